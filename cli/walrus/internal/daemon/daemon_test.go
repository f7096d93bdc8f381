package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/configs"
	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/internal/testcluster"
)

func TestNodeConfigMapsEveryField(t *testing.T) {
	c := configs.Default()
	c.NodeID = 7
	c.DataDir = "/d"
	c.Raft = configs.RaftConfig{Host: "10.0.0.1", Port: 7001}
	c.Client = configs.ClientConfig{Host: "10.0.0.2", Port: 7002, MaxFrameBytes: 4096}
	c.HTTP = configs.HTTPConfig{Host: "10.0.0.3", Port: 7003}
	c.Join = []string{"a:1", "b:2"}
	c.MaxSegmentEntries = 55
	c.MonitorCheckMS = 250
	c.LeaseSyncMS = 20
	c.CursorCommitMS = 30
	c.FailureTimeoutMS = 900
	c.Topics.AutoCreate = false
	c.Storage.MinFreeBytes = 1234
	c.Storage.MinFreePercent = 7.5
	n := NodeConfig(c)
	if n.NodeID != 7 || n.DataDir != "/d" || n.RaftHost != "10.0.0.1" || n.RaftPort != 7001 ||
		n.RaftAdvertiseHost != "" || n.ClientHost != "10.0.0.2" || n.ClientPort != 7002 ||
		n.HTTPHost != "10.0.0.3" || n.HTTPPort != 7003 || strings.Join(n.Join, ",") != "a:1,b:2" ||
		n.MaxSegmentEntries != 55 || n.MonitorInterval != 250*time.Millisecond ||
		n.LeaseSyncInterval != 20*time.Millisecond || n.CursorCommitInterval != 30*time.Millisecond ||
		n.FailureTimeout != 900*time.Millisecond || n.MaxFrameBytes != 4096 || n.AutoCreateTopics ||
		n.ReplicationFactor != 3 || n.AckQuorum != 2 || n.MinFreeBytes != 1234 || n.MinFreePercent != 7.5 {
		t.Fatalf("NodeConfig = %+v", n)
	}
	c.Raft.AdvertiseHost = "node7.example"
	if got := NodeConfig(c).RaftAdvertiseHost; got != "node7.example" {
		t.Fatalf("advertise host %q", got)
	}
	c.Join[0] = "changed"
	if n.Join[0] != "a:1" {
		t.Fatal("NodeConfig shares the join slice")
	}
	if err := NodeConfig(configs.Default()).Validate(); err != nil {
		t.Fatalf("defaults do not validate as node.Config: %v", err)
	}
}

func TestStoreDirLayout(t *testing.T) {
	c := configs.Default()
	c.DataDir, c.NodeID = "/data", 3
	for backend, want := range map[string]string{
		configs.BackendMmap:   "/data/node_3/user_data/data_plane",
		configs.BackendBadger: "/data/node_3/user_data/badger",
		configs.BackendPlugin: "",
	} {
		c.Storage.Backend = backend
		if got := StoreDir(c); got != want {
			t.Errorf("%s: StoreDir = %q, want %q", backend, got, want)
		}
	}
}

func TestOpenStoreBackends(t *testing.T) {
	for _, backend := range []string{configs.BackendMmap, configs.BackendBadger} {
		t.Run(backend, func(t *testing.T) {
			c := configs.Default()
			c.DataDir = t.TempDir()
			c.Storage.Backend = backend
			c.Storage.Durability = "interval"
			s, err := OpenStore(t.Context(), c, testLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			id := engine.SegmentID{Topic: "t", Segment: 1}
			if _, err := s.Append(t.Context(), id, [][]byte{[]byte("x")}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(StoreDir(c)); err != nil || !fi.IsDir() {
				t.Fatalf("store dir: %v", err)
			}
		})
	}
	t.Run("plugin_missing", func(t *testing.T) {
		c := configs.Default()
		c.Storage.Backend = configs.BackendPlugin
		c.Storage.Plugin.Path = filepath.Join(t.TempDir(), "no-such-plugin")
		c.Storage.Plugin.StartTimeoutMS = 2000
		if _, err := OpenStore(t.Context(), c, testLogger(t), nil); err == nil || !strings.Contains(err.Error(), "no-such-plugin") {
			t.Fatalf("OpenStore of a missing plugin: %v", err)
		}
	})
}

func TestLoggerFormatsAndFile(t *testing.T) {
	var buf bytes.Buffer
	l, closeFn, err := newLogger(configs.LogConfig{Level: "warn", Format: "json"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	closeFn()
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["msg"] != "shown" || strings.Contains(buf.String(), "hidden") {
		t.Fatalf("json warn logger wrote %q (%v)", buf.String(), err)
	}

	file := filepath.Join(t.TempDir(), "sub", "walrus.log")
	buf.Reset()
	l, closeFn, err = newLogger(configs.LogConfig{Level: "debug", Format: "text", File: file}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("to the file")
	if err := closeFn(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	if !strings.Contains(string(b), "msg=\"to the file\"") || buf.Len() != 0 {
		t.Fatalf("file %q, stderr %q", b, buf.String())
	}
	if _, _, err := newLogger(configs.LogConfig{Level: "loud"}, &buf); !errors.Is(err, configs.ErrInvalid) {
		t.Fatalf("bad level: %v", err)
	}
}

// Run serves a single-node cluster in-process and returns nil once its
// context is cancelled, having closed the store (a second Run on the same
// data directory can open it again).
func TestRunCleanShutdown(t *testing.T) {
	ports := testcluster.FreePorts(t, 2)
	c := configs.Default()
	c.DataDir = t.TempDir()
	c.Raft.Port, c.Client.Port = ports[0], ports[1]
	c.Log.File = filepath.Join(t.TempDir(), "walrus.log")
	addr := net.JoinHostPort("127.0.0.1", itoa(ports[1]))

	for round := range 2 {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, c, os.Stderr) }()
		testcluster.Eventually(t, 30*time.Second, func() error {
			conn, err := testcluster.Dial(ctx, addr)
			if err != nil {
				return err
			}
			defer conn.Close()
			r, err := conn.Do("PUT t round")
			if err != nil {
				return err
			}
			if r != "OK" {
				return errors.New(r)
			}
			return nil
		})
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: Run = %v", round, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: Run did not return after cancel", round)
		}
	}
	b, _ := os.ReadFile(c.Log.File)
	if !strings.Contains(string(b), "Node 1 booting") {
		t.Fatalf("log file lacks the boot line:\n%s", b)
	}
}

func TestRunRejectsWhatNodeRejects(t *testing.T) {
	c := configs.Default()
	c.DataDir = t.TempDir()
	// A config that skipped configs.Load still fails start-up with
	// ErrInvalid, naming the key.
	c.MaxSegmentEntries = 0
	err := Run(t.Context(), c, &bytes.Buffer{})
	if !errors.Is(err, configs.ErrInvalid) || !strings.Contains(err.Error(), "max_segment_entries") {
		t.Fatalf("Run = %v", err)
	}
}

func TestCommandFlagsAndHelp(t *testing.T) {
	cmd := NewCommand()
	for _, f := range []string{"config", "node-id", "data-dir", "raft-port", "raft-host", "raft-advertise-host", "client-port", "client-host", "join", "log-file", "http-port", "log-level"} {
		if cmd.Flags().Lookup(f) == nil {
			t.Errorf("flag --%s missing", f)
		}
	}
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil || !strings.Contains(out.String(), "WALRUS_MONITOR_CHECK_MS") {
		t.Fatalf("help: %v\n%s", err, out.String())
	}
	cmd = NewCommand()
	cmd.SetArgs([]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")})
	if err := cmd.ExecuteContext(t.Context()); !errors.Is(err, configs.ErrInvalid) {
		t.Fatalf("missing config: %v", err)
	}
}
