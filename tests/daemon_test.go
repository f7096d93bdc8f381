package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/status"
)

// waitSingleLeader polls a lone node's METRICS until it is the leader.
func waitSingleLeader(t *testing.T, p *testcluster.Proc, addr string) status.Metrics {
	t.Helper()
	var m status.Metrics
	testcluster.Eventually(t, testcluster.DefaultReadyTimeout, func() error {
		if exited, err := p.Exited(); exited {
			t.Fatalf("walrus exited early (%v):\n%s", err, p.Output())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cl, err := client.Dial(ctx, addr, client.Options{})
		if err != nil {
			return err
		}
		defer cl.Close()
		if m, err = cl.MetricsDoc(ctx); err != nil {
			return err
		}
		if m.State != "Leader" {
			return fmt.Errorf("state %s", m.State)
		}
		return nil
	})
	return m
}

func portsFree(addrs ...string) error {
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return err
		}
		ln.Close()
	}
	return nil
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// No config, no flags, no environment: a single-node cluster on the
// embedded defaults (client 127.0.0.1:8080, Raft 127.0.0.1:6000, ./data,
// mmap), which SIGTERM shuts down with status 0.
func TestNoConfigDefaults(t *testing.T) {
	skipShort(t)
	if err := portsFree("127.0.0.1:8080", "127.0.0.1:6000"); err != nil {
		t.Skipf("default ports are busy on this machine (%v); the defaults themselves are covered by configs tests", err)
	}
	wd := t.TempDir()
	p := testcluster.StartWalrus(t, wd, nil)
	m := waitSingleLeader(t, p, "127.0.0.1:8080")
	if m.ID != 1 {
		t.Errorf("default node id %d, want 1", m.ID)
	}
	conn := testcluster.MustDial(t, "127.0.0.1:8080")
	mustOK(t, conn, "PUT defaults hello world")
	if r := do(t, conn, "GET defaults"); r != "OK hello world" {
		t.Fatalf("GET: %q", r)
	}
	for _, d := range []string{"data/node_1/user_data/data_plane", "data/node_1/raft_meta"} {
		if fi, err := os.Stat(filepath.Join(wd, d)); err != nil || !fi.IsDir() {
			t.Errorf("default layout: %s missing in the working directory (%v)", d, err)
		}
	}
	conn.Close()
	if err := p.Stop(); err != nil {
		t.Fatalf("SIGTERM: exit %v, want status 0\n%s", err, p.Output())
	}
}

// A flag beats the environment, which beats the file, which beats the
// default — checked on a running daemon.
func TestConfigPrecedenceEndToEnd(t *testing.T) {
	skipShort(t)
	ports := testcluster.FreePorts(t, 4)
	fileClient, envClient, flagClient, fileRaft := ports[0], ports[1], ports[2], ports[3]
	dir := t.TempDir()
	fileData, envData := filepath.Join(dir, "file-data"), filepath.Join(dir, "env-data")
	cfg := filepath.Join(dir, "walrus.yaml")
	yaml := fmt.Sprintf("node_id: 4\ndata_dir: %s\nraft:\n  port: %d\nclient:\n  port: %d\nmonitor_check_ms: 500\n", fileData, fileRaft, fileClient)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"WALRUS_DATA_DIR=" + envData,                    // env > file
		"WALRUS_CLIENT_PORT=" + strconv.Itoa(envClient), // loses to the flag
		"WALRUS_MONITOR_CHECK_MS=250",
	}
	p := testcluster.StartWalrus(t, dir, env, "--config", cfg, "--client-port", strconv.Itoa(flagClient), "--log-level", "debug")
	m := waitSingleLeader(t, p, addr(flagClient)) // flag > env > file
	if m.ID != 4 {
		t.Errorf("node id %d, want 4 from the file", m.ID)
	}
	for _, a := range []string{addr(fileClient), addr(envClient)} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("something listens on %s: a lower-precedence client port won", a)
		}
	}
	if c, err := net.DialTimeout("tcp", addr(fileRaft), time.Second); err != nil {
		t.Errorf("Raft is not on the file's port %d: %v", fileRaft, err)
	} else {
		c.Close()
	}
	if _, err := os.Stat(filepath.Join(envData, "node_4", "raft_meta")); err != nil {
		t.Errorf("data not in the environment's data_dir: %v", err)
	}
	if _, err := os.Stat(fileData); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file's data_dir was used (%v)", err)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.Output())
	}
}

// Invalid configuration stops the daemon at start, non-zero, naming the key.
func TestInvalidConfigExits(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"port out of range", nil, []string{"--config", write("port.yaml", "raft:\n  port: 70000\n")}, []string{"raft.port", "70000", "1..65535"}},
		{"unknown key", nil, []string{"--config", write("typo.yaml", "raft:\n  prot: 1\n")}, []string{"prot"}},
		{"bad backend", nil, []string{"--config", write("backend.yaml", "storage:\n  backend: rocks\n")}, []string{"storage.backend", "rocks"}},
		{"bad seed env", []string{"WALRUS_MONITOR_CHECK_MS=1"}, nil, []string{"monitor_check_ms", "10..3600000"}},
		{"bad flag", nil, []string{"--node-id", "0"}, []string{"node_id"}},
		{"missing file", nil, []string{"--config", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml"}},
		{"unknown flag", nil, []string{"--frobnicate"}, []string{"frobnicate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testcluster.StartWalrus(t, dir, tt.env, tt.args...)
			err := p.Wait(30 * time.Second)
			if code := testcluster.ExitCode(err); code == 0 || code == -1 {
				t.Fatalf("exit %v, want a non-zero status\n%s", err, p.Output())
			}
			out := p.Output()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not mention %q:\n%s", w, out)
				}
			}
		})
	}
}

// --log-file gets the seed's log lines; SIGTERM exits 0; flags alone (no
// file) configure a node.
func TestLogFileAndSIGTERM(t *testing.T) {
	skipShort(t)
	ports := testcluster.FreePorts(t, 3)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "logs", "node-9.log")
	p := testcluster.StartWalrus(t, dir, nil,
		"--node-id", "9", "--data-dir", filepath.Join(dir, "data"),
		"--raft-port", strconv.Itoa(ports[0]), "--raft-host", "127.0.0.1", "--raft-advertise-host", "127.0.0.1",
		"--client-port", strconv.Itoa(ports[1]), "--client-host", "127.0.0.1",
		"--http-port", strconv.Itoa(ports[2]), "--log-file", logPath)
	waitSingleLeader(t, p, addr(ports[1]))
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get("http://" + addr(ports[2]) + path)
		if err != nil {
			t.Fatalf("--http-port: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", path, resp.Status)
		}
	}
	conn := testcluster.MustDial(t, addr(ports[1]))
	mustOK(t, conn, "REGISTER logged")
	want := []string{"Node 9 booting", "Client listener bound", "Monitor loop started", "Registered node address"}
	testcluster.Eventually(t, 20*time.Second, func() error {
		b, err := os.ReadFile(logPath)
		if err != nil {
			return err
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				return fmt.Errorf("log file lacks %q:\n%s", w, b)
			}
		}
		return nil
	})
	conn.Close()
	if err := p.Stop(); err != nil {
		t.Fatalf("SIGTERM: exit %v, want 0\n%s", err, p.Output())
	}
	if out := p.Output(); strings.Contains(out, "Node 9 booting") {
		t.Errorf("with --log-file the log also went to stderr:\n%s", out)
	}
}

// Every backend the daemon wires can serve a node; the data lands in the
// documented directory.
func TestBackends(t *testing.T) {
	skipShort(t)
	for _, tc := range []struct {
		backend, dir string
		stop         syscall.Signal
	}{
		{"mmap", "user_data/data_plane", syscall.SIGTERM},
		{"badger", "user_data/badger", syscall.SIGINT},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			ports := testcluster.FreePorts(t, 2)
			dir := t.TempDir()
			p := testcluster.StartWalrus(t, dir, []string{"WALRUS_STORAGE_BACKEND=" + tc.backend},
				"--data-dir", filepath.Join(dir, "data"), "--raft-port", strconv.Itoa(ports[0]), "--client-port", strconv.Itoa(ports[1]))
			waitSingleLeader(t, p, addr(ports[1]))
			conn := testcluster.MustDial(t, addr(ports[1]))
			putMany(t, conn, "b", seq("b", 0, 20))
			sameList(t, tc.backend, drain(t, conn, "b", 40), seq("b", 0, 20))
			if fi, err := os.Stat(filepath.Join(dir, "data", "node_1", tc.dir)); err != nil || !fi.IsDir() {
				t.Errorf("%s data dir: %v", tc.backend, err)
			}
			conn.Close()
			if err := p.StopWith(tc.stop); err != nil {
				t.Fatalf("%v: %v, want exit 0\n%s", tc.stop, err, p.Output())
			}
		})
	}
}
