package node_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/nodetest"
)

// TestSegmentLeaderFailover stops the node leading a topic's open segment;
// the Raft leader seals the segment at the count the dead node last
// reported and opens the next one on a live node, and PUTs resume.
func TestSegmentLeaderFailover(t *testing.T) {
	// Replication factor 1: the pre-replication path (seal at the last
	// reported count) still serves topics created with rf=1.
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) { c.FailureTimeout = time.Second; c.ReplicationFactor = 1 })
	ctx := t.Context()
	leader := nodetest.RaftLeader(t, nodes)
	c := nodetest.Dial(t, leader)
	// Create topics until one is led by a node other than the Raft leader.
	topic := ""
	var victim *nodetest.Node
	for i := 0; victim == nil; i++ {
		name := "fo-" + strconv.Itoa(i)
		if err := c.Register(ctx, name); err != nil {
			t.Fatal(err)
		}
		if l := nodetest.State(t, c, name).LeaderNode; l != leader.ID() {
			topic, victim = name, nodes[l-1]
		}
	}
	for i := range 10 {
		if err := c.Put(ctx, topic, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	// Let a heartbeat carry the count, then stop the segment leader.
	nodetest.Eventually(t, 5*time.Second, "count reported", func() bool {
		return leader.ReportedCount(victim.ID(), topic, 1) == 10
	})
	victim.Crash(t)
	start := time.Now()
	putRetry(t, c, topic, "after")
	t.Logf("write resumed %v after the segment leader stopped", time.Since(start))
	st := nodetest.State(t, c, topic)
	if st.CurrentSegment != 2 || st.LeaderNode == victim.ID() || st.SealedSegments["1"] != 10 {
		t.Fatalf("state after failover = %+v", st)
	}
}

// putRetry puts until OK (a PUT in flight to a node that dies answers ERR:
// its outcome is unknown, so the node does not retry it itself).
func putRetry(t testing.TB, c *client.Client, topic, payload string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := c.Put(t.Context(), topic, []byte(payload))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("put %q: %v", payload, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRaftLeaderFailover crashes the Raft leader while it leads a
// replicated topic's open segment: a new Raft leader is elected, recovers
// the segment from the surviving replicas, and every entry stays readable.
func TestRaftLeaderFailover(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) { c.FailureTimeout = time.Second })
	ctx := t.Context()
	leader := nodetest.RaftLeader(t, nodes)
	var other *nodetest.Node
	for _, tn := range nodes {
		if tn != leader {
			other = tn
			break
		}
	}
	c := nodetest.Dial(t, other)
	topic := ""
	for i := 0; topic == ""; i++ {
		name := "rl-" + strconv.Itoa(i)
		if err := c.Register(ctx, name); err != nil {
			t.Fatal(err)
		}
		if nodetest.State(t, c, name).LeaderNode == leader.ID() {
			topic = name
		}
	}
	for i := range 7 {
		if err := c.Put(ctx, topic, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.Eventually(t, 5*time.Second, "count reported to the other nodes", func() bool {
		for _, tn := range nodes {
			if tn != leader && tn.ReportedCount(leader.ID(), topic, 1) != 7 {
				return false
			}
		}
		return true
	})
	leader.Crash(t)
	start := time.Now()
	putRetry(t, c, topic, "after")
	t.Logf("write resumed %v after the Raft and segment leader stopped", time.Since(start))
	st := nodetest.State(t, c, topic)
	if st.CurrentSegment != 2 || st.LeaderNode == leader.ID() || st.SealedSegments["1"] != 7 {
		t.Fatalf("state after failover = %+v", st)
	}
	// The sealed segment is read from the surviving replicas, in order,
	// once each.
	for i := range 7 {
		p, ok, err := c.Get(ctx, topic)
		if err != nil || !ok || string(p) != strconv.Itoa(i) {
			t.Fatalf("GET %d = %q, %v, %v", i, p, ok, err)
		}
	}
	if p, ok, err := c.Get(ctx, topic); err != nil || !ok || string(p) != "after" {
		t.Fatalf("GET after = %q, %v, %v", p, ok, err)
	}
}

// TestGracefulHandoff stops a segment leader cleanly while a writer runs:
// it hands its open segment over at the exact count, writes move at once,
// and every acknowledged entry is read back once, in order.
func TestGracefulHandoff(t *testing.T) {
	// Default 5 s failure timeout: only a handoff makes the move fast.
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) { c.HandoffOnShutdown = true })
	ctx := t.Context()
	leader := nodetest.RaftLeader(t, nodes)
	var victim, other *nodetest.Node
	for _, tn := range nodes {
		if tn == leader {
			continue
		}
		if victim == nil {
			victim = tn
		} else {
			other = tn
		}
	}
	c := nodetest.Dial(t, other)
	topic := ""
	for i := 0; topic == ""; i++ {
		name := "ho-" + strconv.Itoa(i)
		if err := c.Register(ctx, name); err != nil {
			t.Fatal(err)
		}
		if nodetest.State(t, c, name).LeaderNode == victim.ID() {
			topic = name
		}
	}
	acked := make(chan int, 10000)
	stopWriting := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		w := nodetest.Dial(t, other)
		for i := 0; ; i++ {
			select {
			case <-stopWriting:
				writerDone <- nil
				return
			default:
			}
			if err := w.Put(ctx, topic, []byte(strconv.Itoa(i))); err != nil {
				t.Logf("writer stopped at entry %d: %v", i, err)
				writerDone <- err
				return
			}
			acked <- i
		}
	}()
	nodetest.Eventually(t, 10*time.Second, "some writes", func() bool { return len(acked) > 50 })
	start := time.Now()
	victim.Stop(t)
	stopped := time.Since(start)
	nodetest.Eventually(t, 10*time.Second, "writes on the new leader", func() bool {
		return nodetest.State(t, c, topic).CurrentSegment == 2 && len(acked) > 0
	})
	n0 := len(acked)
	nodetest.Eventually(t, 3*time.Second, "writes continue", func() bool { return len(acked) > n0+20 })
	close(stopWriting)
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
	close(acked)
	last := -1
	for i := range acked {
		last = i
	}
	t.Logf("graceful stop took %v; %d entries acknowledged", stopped, last+1)
	// Segment 1 was sealed at exactly what its (now stopped) leader stored,
	// and segments 1 and 2 together hold every acknowledged entry once.
	st := nodetest.State(t, c, topic)
	sealed := st.SealedSegments["1"]
	stored, _ := countOf(victim, topic, 1)
	if sealed == 0 || stored != sealed {
		t.Fatalf("sealed count %d, the stopped node's store holds %d", sealed, stored)
	}
	open, _ := countOf(nodes[st.SegmentLeaders["2"]-1], topic, 2)
	if int(sealed+open) != last+1 {
		t.Fatalf("segments hold %d+%d entries, %d were acknowledged", sealed, open, last+1)
	}
}
