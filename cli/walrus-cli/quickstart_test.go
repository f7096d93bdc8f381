package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// quickStartPorts are the fixed ports of configs/node{1,2,3}.yaml: client,
// Raft and HTTP of each node.
var quickStartPorts = []int{9091, 9092, 9093, 6001, 6002, 6003, 9101, 9102, 9103}

// TestQuickStart runs the README's quick start: scripts/cluster-up.sh, a
// put, a get and the seed's leader check with walrus-cli, then
// scripts/cluster-down.sh and scripts/cluster-wipe.sh. It uses the real
// configs (so their fixed ports) in a copy of the repository layout under a
// temporary directory, so the work tree is not touched. It skips when any of
// those ports is taken, and it is the only test in this package using them,
// so it never runs beside itself.
func TestQuickStart(t *testing.T) {
	needCluster(t)
	for _, p := range quickStartPorts {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Skipf("port %d is busy (%v); the quick start needs 9091-9093, 6001-6003, 9101-9103", p, err)
		}
		ln.Close()
	}
	root, err := testcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "configs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"node1.yaml", "node2.yaml", "node3.yaml"} {
		b, err := os.ReadFile(filepath.Join(root, "configs", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, "configs", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(cleanEnv(), "WALRUS_ROOT="+work, "BIN="+binDir, "NO_BUILD=1", "UP_TIMEOUT=60", "DOWN_TIMEOUT=20")
	script := func(name string) (string, error) {
		// not t.Context(): the cleanup runs this after it is cancelled
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", name))
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	t.Cleanup(func() {
		// Whatever happened, leave no node running.
		if out, err := script("cluster-down.sh"); err != nil {
			t.Errorf("cleanup cluster-down.sh: %v\n%s", err, out)
		}
	})

	out, err := script("cluster-up.sh")
	if err != nil {
		for _, n := range []string{"node1", "node2", "node3"} {
			t.Logf("%s log:\n%s", n, testcluster.Tail(filepath.Join(work, ".cluster", "logs", n+".log"), 30))
		}
		t.Fatalf("cluster-up.sh: %v\n%s", err, out)
	}
	if !strings.Contains(out, "cluster up: leader is") {
		t.Fatalf("cluster-up.sh did not report the leader:\n%s", out)
	}
	pids, _ := filepath.Glob(filepath.Join(work, ".cluster", "pids", "*.pid"))
	if len(pids) != 3 {
		t.Fatalf("want 3 PID files, got %v", pids)
	}

	stamp := fmt.Sprint(time.Now().Unix())
	expect(t, cli(t, "--addr", "127.0.0.1:9091", "put", "health-check", stamp), 0, "OK\n")
	expect(t, cli(t, "--addr", "127.0.0.1:9091", "get", "health-check"), 0, stamp+"\n")
	if jq, err := exec.LookPath("jq"); err == nil {
		leaders := 0
		for _, addr := range []string{"127.0.0.1:9091", "127.0.0.1:9092", "127.0.0.1:9093"} {
			cmd := exec.CommandContext(t.Context(), "sh", "-c", `"$CLI" --addr "$ADDR" metrics | "$JQ" -e '.state == "Leader"'`)
			cmd.Env = append(cleanEnv(), "CLI="+cliPath(), "ADDR="+addr, "JQ="+jq)
			if cmd.Run() == nil {
				leaders++
			}
		}
		if leaders != 1 {
			t.Fatalf("metrics | jq: %d nodes say Leader, want 1", leaders)
		}
	}
	r := cli(t, "status", "--addrs", "127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093")
	if r.code != 0 {
		t.Fatalf("status: %s", r)
	}

	// wipe refuses while the cluster runs
	if out, err := script("cluster-wipe.sh"); err == nil || !strings.Contains(out, "cluster is running") {
		t.Fatalf("cluster-wipe.sh while running: err %v\n%s", err, out)
	}
	if out, err := script("cluster-down.sh"); err != nil || !strings.Contains(out, "3 node(s) stopped") {
		t.Fatalf("cluster-down.sh: %v\n%s", err, out)
	}
	r = cli(t, "--addr", "127.0.0.1:9091", "--timeout", "1s", "metrics")
	if r.code != 3 {
		t.Fatalf("node 1 still answers after cluster-down: %s", r)
	}
	dataDir := filepath.Join(work, "data", "cluster")
	if _, err := os.Stat(filepath.Join(dataDir, "node_1")); err != nil {
		t.Fatalf("node_1 data directory missing before wipe: %v", err)
	}
	if out, err := script("cluster-wipe.sh"); err != nil {
		t.Fatalf("cluster-wipe.sh: %v\n%s", err, out)
	}
	for _, p := range []string{dataDir, filepath.Join(work, ".cluster")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists after wipe (%v)", p, err)
		}
	}
}
