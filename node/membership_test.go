package node

import (
	"slices"
	"testing"
	"time"
)

// TestJoinThroughFollowerAndRemove joins a fourth node through a follower
// (the join is forwarded to the Raft leader), waits for its promotion to
// voter, then removes it with the REMOVE_NODE extension.
func TestJoinThroughFollowerAndRemove(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	leader := raftLeader(t, nodes)
	var follower *testNode
	for _, tn := range nodes {
		if tn != leader {
			follower = tn
			break
		}
	}
	cfg := testConfig(t, 4, t.TempDir())
	cfg.Join = []string{follower.n.RaftAddr()}
	n4 := startNode(t, cfg, nil)
	defer n4.stop(t)
	c := dial(t, follower)
	eventually(t, 30*time.Second, "node 4 promoted to voter", func() bool {
		return slices.Contains(metricsOf(t, c).Membership.Voters, 4)
	})
	eventually(t, 10*time.Second, "node 4 address registered", func() bool {
		_, ok := leader.n.fsm.Node(4)
		return ok
	})
	// Node 4 serves clients like any member.
	if err := dial(t, n4).Put(t.Context(), "four", []byte("x")); err != nil {
		t.Fatal(err)
	}
	r, err := c.DoLine(t.Context(), "REMOVE_NODE 4")
	if err != nil || r.String() != "OK" {
		t.Fatalf("REMOVE_NODE 4 = %q %v", r.String(), err)
	}
	eventually(t, 10*time.Second, "node 4 gone", func() bool {
		m := metricsOf(t, c)
		_, known := leader.n.fsm.Node(4)
		return !slices.Contains(m.Membership.Voters, 4) && !slices.Contains(m.Membership.Learners, 4) && !known
	})
	if r, _ := c.DoLine(t.Context(), "REMOVE_NODE x"); !r.IsErr() {
		t.Fatalf("REMOVE_NODE x = %q", r.String())
	}
}

// TestRestartOnNewAddress restarts a follower on another Raft port with its
// data: the leader learns the new address from its heartbeats and the node
// serves again.
func TestRestartOnNewAddress(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	leader := raftLeader(t, nodes)
	victim := nodes[leader.n.id%3]
	ctx := t.Context()
	c := dial(t, leader)
	if err := c.Put(ctx, "addr", []byte("before")); err != nil {
		t.Fatal(err)
	}
	victim.stop(t)
	cfg := victim.cfg
	cfg.RaftPort, cfg.ClientPort = 0, 0 // new ports
	cfg.Join = nil
	moved := startNode(t, cfg, victim.store)
	defer moved.stop(t)
	eventually(t, 30*time.Second, "new address in the Raft configuration", func() bool {
		m, err := leader.n.cons.Membership()
		return err == nil && m.Addrs[moved.n.id] == moved.n.RaftAddr() && slices.Contains(m.Voters, moved.n.id)
	})
	eventually(t, 30*time.Second, "moved node caught up", func() bool {
		return moved.n.cons.Raft().AppliedIndex() >= leader.n.cons.Raft().CommitIndex()-1
	})
	if err := dial(t, moved).Put(ctx, "addr", []byte("after")); err != nil {
		t.Fatal(err)
	}
}
