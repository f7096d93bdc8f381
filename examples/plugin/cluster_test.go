package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

const (
	clusterRollEntries = 40
	clusterRollMonitor = 150 * time.Millisecond
)

// startBoltCluster starts 3 walrus processes whose storage is this example
// plugin (storage.backend: plugin), each with its own database directory.
func startBoltCluster(t *testing.T) (*testcluster.Cluster, map[uint64]string) {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process cluster test; skipped with -short")
	}
	dirs := map[uint64]string{}
	for id := uint64(1); id <= 3; id++ {
		dirs[id] = filepath.Join(t.TempDir(), "bolt")
	}
	c := testcluster.Start(t, testcluster.Options{
		Nodes:             3,
		Backend:           "plugin",
		PluginPath:        plugins[0].path,
		MaxSegmentEntries: clusterRollEntries,
		MonitorInterval:   clusterRollMonitor,
		NodeExtra: func(id uint64) map[string]any {
			// Durability none keeps the test quick on shared CI disks; a
			// bbolt commit is in the file (page cache) before the plugin
			// answers, so it still survives the plugin being killed.
			return map[string]any{"storage.plugin.args": []string{"-dir", dirs[id], "-durability", "none"}}
		},
	})
	return c, dirs
}

func do(t testing.TB, c *testcluster.Conn, line string) string {
	t.Helper()
	r, err := c.Do(line)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return r
}

func mustOK(t testing.TB, c *testcluster.Conn, line string) {
	t.Helper()
	if r := do(t, c, line); r != "OK" {
		t.Fatalf("%s: got %q, want OK", line, r)
	}
}

// drain GETs until EMPTY (at most limit+1 times).
func drain(t testing.TB, c *testcluster.Conn, topic string, limit int) []string {
	t.Helper()
	var got []string
	for range limit + 1 {
		switch r := do(t, c, "GET "+topic); {
		case r == "EMPTY":
			return got
		case strings.HasPrefix(r, "OK "):
			got = append(got, r[3:])
		default:
			t.Fatalf("GET %s after %d entries: %q", topic, len(got), r)
		}
	}
	t.Fatalf("GET %s: not EMPTY after %d entries", topic, limit)
	return nil
}

// waitRolled waits until every node sees a current segment past seg.
func waitRolled(t *testing.T, c *testcluster.Cluster, topic string, seg uint64) {
	t.Helper()
	testcluster.Eventually(t, 30*time.Second, func() error {
		for _, id := range c.RunningIDs() {
			st, err := c.State(id, topic)
			if err != nil {
				return err
			}
			if st.CurrentSegment <= seg {
				return fmt.Errorf("node %d: current_segment still %d", id, st.CurrentSegment)
			}
		}
		return nil
	})
}

// TestClusterSmoke: register on one node, PUT on another, GET on the third.
func TestClusterSmoke(t *testing.T) {
	c, _ := startBoltCluster(t)
	mustOK(t, c.Conn(1), "REGISTER smoke")
	mustOK(t, c.Conn(2), "PUT smoke hello from node 2")
	mustOK(t, c.Conn(3), "PUT smoke second")
	if r := do(t, c.Conn(3), "GET smoke"); r != "OK hello from node 2" {
		t.Fatalf("GET on node 3: %q", r)
	}
	if r := do(t, c.Conn(1), "GET smoke"); r != "OK second" {
		t.Fatalf("GET on node 1: %q", r)
	}
	if r := do(t, c.Conn(2), "GET smoke"); r != "EMPTY" {
		t.Fatalf("GET after draining: %q", r)
	}
}

// TestClusterRollover: segments roll at max_segment_entries onto the next
// node's plugin, sealed counts are exact, and every entry reads back once,
// in order, across all three plugins.
func TestClusterRollover(t *testing.T) {
	c, _ := startBoltCluster(t)
	conn := c.Conn(c.Leader().ID)
	mustOK(t, conn, "REGISTER roll")
	var written []string
	const rounds = 3
	for r := range rounds {
		st, err := c.State(1, "roll")
		if err != nil {
			t.Fatal(err)
		}
		for i := range clusterRollEntries {
			p := fmt.Sprintf("roll-%05d", r*clusterRollEntries+i)
			mustOK(t, conn, "PUT roll "+p)
			written = append(written, p)
		}
		waitRolled(t, c, "roll", st.CurrentSegment)
	}
	st, err := c.State(2, "roll")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.SealedSegments) != rounds || testcluster.SealedTotal(st) != uint64(len(written)) {
		t.Fatalf("state after %d rounds: %+v", rounds, st)
	}
	leaders := map[uint64]bool{}
	for _, id := range st.SegmentLeaders {
		leaders[id] = true
	}
	if len(leaders) != 3 {
		t.Fatalf("segments led by %v, want all three nodes (round robin): %+v", leaders, st)
	}
	got := drain(t, c.Conn(3), "roll", len(written))
	if strings.Join(got, ",") != strings.Join(written, ",") {
		t.Fatalf("read back %d entries, wrote %d; first differences: got %.200q want %.200q", len(got), len(written), got, written)
	}
}

// TestClusterSurvivesPluginKill SIGKILLs the plugin process of the node
// that leads a topic's open segment while a client PUTs in a loop: the node
// stays up, PUTs fail with "ERR ... backend unavailable" for a moment, then
// succeed again, and every acknowledged entry reads back.
func TestClusterSurvivesPluginKill(t *testing.T) {
	c, dirs := startBoltCluster(t)
	const topic = "crashy"
	mustOK(t, c.Conn(1), "REGISTER "+topic)
	st, err := c.State(1, topic)
	if err != nil {
		t.Fatal(err)
	}
	victim := st.LeaderNode
	conn := c.Conn(victim)
	conn.SetTimeout(20 * time.Second)
	pluginPID := findPluginPID(t, dirs[victim])

	var acked []string
	errs, seq, killedAt := 0, 0, -1
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		p := fmt.Sprintf("crashy-%06d", seq)
		seq++
		r := do(t, conn, "PUT "+topic+" "+p)
		switch {
		case r == "OK":
			acked = append(acked, p)
		case strings.HasPrefix(r, "ERR ") && strings.Contains(r, "backend unavailable"):
			errs++
		default:
			t.Fatalf("PUT %s: %q (want OK or ERR ... backend unavailable)", p, r)
		}
		if killedAt < 0 && len(acked) == 50 {
			if err := syscall.Kill(pluginPID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killedAt = len(acked)
		}
		// Done once appends flowed again for a while after the kill.
		if killedAt >= 0 && len(acked) >= killedAt+50 && r == "OK" {
			break
		}
	}
	if killedAt < 0 || len(acked) < killedAt+50 {
		t.Fatalf("PUTs did not resume after the plugin was killed: %d acknowledged, %d errors", len(acked), errs)
	}
	if exited, err := c.Exited(victim); exited {
		t.Fatalf("node %d exited after its plugin was killed: %v", victim, err)
	}
	newPID := findPluginPID(t, dirs[victim])
	if newPID == pluginPID {
		t.Fatalf("plugin pid %d unchanged; it was not restarted", newPID)
	}
	// errs is usually hundreds; it may be 0 when the node rolled the topic
	// over to a healthy node before the next PUT arrived, which is fine.
	t.Logf("node %d: plugin %d killed, restarted as %d; %d PUTs got ERR backend unavailable", victim, pluginPID, newPID, errs)
	got := drain(t, c.Conn(1), topic, seq)
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for _, a := range acked {
		if !seen[a] {
			t.Fatalf("acknowledged entry %s missing after the plugin restart (read %d entries)", a, len(got))
		}
	}
}

// findPluginPID finds the running plugin process serving dir, by its
// command line.
func findPluginPID(t *testing.T, dir string) int {
	t.Helper()
	var pid int
	testcluster.Eventually(t, 20*time.Second, func() error {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return err
		}
		for _, e := range entries {
			n, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil {
				continue
			}
			args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
			if len(args) >= 3 && string(args[0]) == plugins[0].path && bytes.Equal(args[2], []byte(dir)) {
				stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
				if err == nil && bytes.Contains(stat, []byte(") Z ")) {
					continue // a zombie awaiting its reaper
				}
				pid = n
				return nil
			}
		}
		return fmt.Errorf("no plugin process serving %s", dir)
	})
	return pid
}
