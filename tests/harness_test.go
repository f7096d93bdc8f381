package tests

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// TestHarnessFaults checks the nemesis's harness faults on real processes:
// a paused node answers nothing until resumed; node 1 (which bootstraps
// when it has no data) wiped and restarted rejoins the same cluster with
// an empty data dir, and the topic stays readable; a node left paused at
// the end still stops cleanly (exit 0) at cleanup.
func TestHarnessFaults(t *testing.T) {
	skipShort(t)
	c := startReplCluster(t, nil)
	const topic = "harness"
	mustOK(t, c.Conn(1), "REGISTER "+topic)
	putMany(t, c.Conn(2), topic, seq("h", 0, 20))

	paused := c.Follower().ID
	c.Pause(paused)
	if !c.Paused(paused) {
		t.Fatalf("node %d not reported paused", paused)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	conn, err := testcluster.Dial(ctx, c.Node(paused).ClientAddr) // the kernel still accepts
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	conn.SetTimeout(500 * time.Millisecond)
	if r, err := conn.Do("METRICS"); err == nil {
		t.Fatalf("paused node %d answered %q", paused, abbrev(r))
	}
	conn.Close()
	c.Resume(paused)
	testcluster.Eventually(t, 10*time.Second, func() error { _, err := c.Metrics(paused); return err })

	c.Wipe(1)
	if _, err := os.Stat(c.Node(1).DataDir); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	c.WaitReady()
	testcluster.Eventually(t, 30*time.Second, func() error {
		m, err := c.Metrics(1)
		if err != nil {
			return err
		}
		if m.CurrentTerm < 2 || len(m.MembershipConfig.Voters) != 3 {
			return fmt.Errorf("node 1 after the wipe: term %d, voters %v (a fresh bootstrap would be term 1, one voter)", m.CurrentTerm, m.MembershipConfig.Voters)
		}
		return nil
	})
	sameList(t, "read back after wiping node 1", drain(t, c.Conn(1), topic, 100), seq("h", 0, 20))

	c.Pause(paused) // cleanup must resume it so that SIGTERM works and it exits 0
}
