package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// scriptEnv runs the cluster scripts on a work directory of their own.
type scriptEnv struct {
	t    *testing.T
	root string // module root (where scripts/ is)
	work string
	env  []string
}

func newScriptEnv(t *testing.T, configs, addrs []string) *scriptEnv {
	t.Helper()
	root, err := testcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	env := append(cleanEnv(), "WALRUS_ROOT="+work, "BIN="+binDir, "NO_BUILD=1", "UP_TIMEOUT=60", "DOWN_TIMEOUT=20",
		"CONFIGS="+strings.Join(configs, " "), "ADDRS="+strings.Join(addrs, " "))
	se := &scriptEnv{t: t, root: root, work: work, env: env}
	t.Cleanup(func() {
		if out, err := se.run("cluster-down.sh"); err != nil {
			t.Errorf("cleanup cluster-down.sh: %v\n%s", err, out)
		}
	})
	return se
}

func (se *scriptEnv) run(name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(se.root, "scripts", name))
	cmd.Env = se.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (se *scriptEnv) write(name, content string) {
	se.t.Helper()
	p := filepath.Join(se.work, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		se.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		se.t.Fatal(err)
	}
}

// recordedPIDs reads .cluster/pids.
func (se *scriptEnv) recordedPIDs() []int {
	files, _ := filepath.Glob(filepath.Join(se.work, ".cluster", "pids", "*.pid"))
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			se.t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			se.t.Fatalf("%s: %v", f, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// alive reports whether pid is a running process. A zombie (exited, not yet
// reaped by whoever inherited it from the script) does not count.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...; comm may contain spaces, so look after the last ')'.
	rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

// The scripts on a one-node cluster with free ports (so this runs even
// when the quick start's fixed ports are taken): up, refuse a second up,
// refuse wipe while running, down, wipe.
func TestClusterScriptsOnFreePorts(t *testing.T) {
	needCluster(t)
	ports := testcluster.FreePorts(t, 3)
	client := fmt.Sprintf("127.0.0.1:%d", ports[0])
	se := newScriptEnv(t, []string{"configs/solo.yaml"}, []string{client})
	se.write("configs/solo.yaml", fmt.Sprintf(`node_id: 7
data_dir: ./data/solo   # a comment, as in the sample configs
raft:
  host: 127.0.0.1
  port: %d
client:
  host: 127.0.0.1
  port: %d
http:
  host: 127.0.0.1
  port: %d
`, ports[1], ports[0], ports[2]))

	out, err := se.run("cluster-up.sh")
	if err != nil || !strings.Contains(out, "cluster up: leader is solo ("+client+")") {
		t.Fatalf("cluster-up.sh: %v\n%s", err, out)
	}
	pids := se.recordedPIDs()
	if len(pids) != 1 || !alive(pids[0]) {
		t.Fatalf("recorded PIDs %v", pids)
	}
	expect(t, cli(t, "--addr", client, "put", "t", "v"), 0, "OK\n")
	if _, err := os.Stat(filepath.Join(se.work, ".cluster", "logs", "solo.log")); err != nil {
		t.Fatalf("no log file: %v", err)
	}

	if out, err := se.run("cluster-up.sh"); err == nil || !strings.Contains(out, "already running") {
		t.Fatalf("second cluster-up.sh: %v\n%s", err, out)
	}
	if out, err := se.run("cluster-wipe.sh"); err == nil || !strings.Contains(out, "cluster is running") {
		t.Fatalf("wipe while running: %v\n%s", err, out)
	}
	if out, err := se.run("cluster-down.sh"); err != nil || !strings.Contains(out, "1 node(s) stopped") {
		t.Fatalf("cluster-down.sh: %v\n%s", err, out)
	}
	if alive(pids[0]) {
		t.Fatalf("pid %d still alive after cluster-down", pids[0])
	}
	nodeDir := filepath.Join(se.work, "data", "solo", "node_7")
	if _, err := os.Stat(nodeDir); err != nil {
		t.Fatalf("node data missing before wipe: %v", err)
	}
	if out, err := se.run("cluster-wipe.sh"); err != nil {
		t.Fatalf("cluster-wipe.sh: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(se.work, "data")); !os.IsNotExist(err) {
		t.Fatalf("data not wiped: %v", err)
	}
}

// A node that cannot start makes cluster-up fail with its log, and leaves
// nothing running.
func TestClusterUpReportsANodeThatDies(t *testing.T) {
	needCluster(t)
	ports := testcluster.FreePorts(t, 2)
	client := fmt.Sprintf("127.0.0.1:%d", ports[0])
	se := newScriptEnv(t, []string{"configs/bad.yaml"}, []string{client})
	se.write("configs/bad.yaml", fmt.Sprintf("node_id: 1\ndata_dir: ./data/bad\nclient:\n  port: %d\nraft:\n  port: %d\n  prot: 1\n", ports[0], ports[1]))
	out, err := se.run("cluster-up.sh")
	if err == nil || !strings.Contains(out, "bad exited during start-up") || !strings.Contains(out, "prot") {
		t.Fatalf("want a failure naming the node and showing its log (the bad key): %v\n%s", err, out)
	}
	for _, pid := range se.recordedPIDs() {
		if alive(pid) {
			t.Fatalf("pid %d left running", pid)
		}
	}
}
