package node

import (
	"strconv"
	"testing"
	"time"
)

// TestSegmentLeaderFailover stops the node leading a topic's open segment;
// the Raft leader seals the segment at the count the dead node last
// reported and opens the next one on a live node, and PUTs resume.
func TestSegmentLeaderFailover(t *testing.T) {
	nodes := startCluster(t, 3, func(c *Config) { c.FailureTimeout = time.Second })
	ctx := t.Context()
	leader := raftLeader(t, nodes)
	c := dial(t, leader)
	// Create topics until one is led by a node other than the Raft leader.
	topic := ""
	var victim *testNode
	for i := 0; victim == nil; i++ {
		name := "fo-" + strconv.Itoa(i)
		if err := c.Register(ctx, name); err != nil {
			t.Fatal(err)
		}
		if l := stateOfTopic(t, c, name).LeaderNode; l != leader.n.id {
			topic, victim = name, nodes[l-1]
		}
	}
	for i := range 10 {
		if err := c.Put(ctx, topic, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	// Let a heartbeat carry the count, then stop the segment leader.
	eventually(t, 5*time.Second, "count reported", func() bool {
		p := leader.n.peers.snapshot()[victim.n.id]
		return p.Open[segKey{topic, 1}] == 10
	})
	victim.stop(t)
	start := time.Now()
	if err := c.Put(ctx, topic, []byte("after")); err != nil {
		t.Fatalf("put after the segment leader died: %v", err)
	}
	t.Logf("write resumed %v after the segment leader stopped", time.Since(start))
	st := stateOfTopic(t, c, topic)
	if st.CurrentSegment != 2 || st.LeaderNode == victim.n.id || st.SealedSegments["1"] != 10 {
		t.Fatalf("state after failover = %+v", st)
	}
}

// TestRaftLeaderFailover stops the Raft leader while it leads a topic's
// open segment: a new Raft leader is elected and, knowing the old leader's
// last reported count from its heartbeats, moves the topic.
func TestRaftLeaderFailover(t *testing.T) {
	nodes := startCluster(t, 3, func(c *Config) { c.FailureTimeout = time.Second })
	ctx := t.Context()
	leader := raftLeader(t, nodes)
	var other *testNode
	for _, tn := range nodes {
		if tn != leader {
			other = tn
			break
		}
	}
	c := dial(t, other)
	topic := ""
	for i := 0; topic == ""; i++ {
		name := "rl-" + strconv.Itoa(i)
		if err := c.Register(ctx, name); err != nil {
			t.Fatal(err)
		}
		if stateOfTopic(t, c, name).LeaderNode == leader.n.id {
			topic = name
		}
	}
	for i := range 7 {
		if err := c.Put(ctx, topic, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "count reported to the other nodes", func() bool {
		for _, tn := range nodes {
			if tn != leader && tn.n.peers.snapshot()[leader.n.id].Open[segKey{topic, 1}] != 7 {
				return false
			}
		}
		return true
	})
	leader.stop(t)
	start := time.Now()
	if err := c.Put(ctx, topic, []byte("after")); err != nil {
		t.Fatalf("put after the Raft leader died: %v", err)
	}
	t.Logf("write resumed %v after the Raft and segment leader stopped", time.Since(start))
	st := stateOfTopic(t, c, topic)
	if st.CurrentSegment != 2 || st.LeaderNode == leader.n.id || st.SealedSegments["1"] != 7 {
		t.Fatalf("state after failover = %+v", st)
	}
	// The entries of the sealed segment are unreadable while their only
	// holder is down: GET answers ERR rather than skipping them.
	for _, tn := range nodes {
		if tn == leader {
			continue
		}
		start := time.Now()
		if _, _, err := dial(t, tn).Get(ctx, topic); err == nil {
			t.Fatal("GET of a segment whose holder is down succeeded")
		} else if time.Since(start) > 5*time.Second {
			t.Fatalf("GET took %v to fail: %v", time.Since(start), err)
		}
	}
}
