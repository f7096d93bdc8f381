package node_test

import (
	"slices"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/nodetest"
)

// TestJoinThroughFollowerAndRemove joins a fourth node through a follower
// (the join is forwarded to the Raft leader), waits for its promotion to
// voter, then removes it with the REMOVE_NODE extension.
func TestJoinThroughFollowerAndRemove(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, nil)
	leader := nodetest.RaftLeader(t, nodes)
	var follower *nodetest.Node
	for _, tn := range nodes {
		if tn != leader {
			follower = tn
			break
		}
	}
	cfg := nodetest.Config(4, t.TempDir())
	cfg.Join = []string{follower.RaftAddr()}
	n4 := nodetest.Start(t, cfg, nil)
	defer n4.Stop(t)
	c := nodetest.Dial(t, follower)
	nodetest.Eventually(t, 30*time.Second, "node 4 promoted to voter", func() bool {
		return slices.Contains(nodetest.Metrics(t, c).MembershipConfig.Voters, 4)
	})
	nodetest.Eventually(t, 10*time.Second, "node 4 address registered", func() bool {
		_, ok := leader.Metadata().Node(4)
		return ok
	})
	// Node 4 serves clients like any member.
	if err := nodetest.Dial(t, n4).Put(t.Context(), "four", []byte("x")); err != nil {
		t.Fatal(err)
	}
	r, err := c.DoLine(t.Context(), "REMOVE_NODE 4")
	if err != nil || r.String() != "OK" {
		t.Fatalf("REMOVE_NODE 4 = %q %v", r.String(), err)
	}
	nodetest.Eventually(t, 10*time.Second, "node 4 gone", func() bool {
		m := nodetest.Metrics(t, c)
		_, known := leader.Metadata().Node(4)
		return !slices.Contains(m.MembershipConfig.Voters, 4) && !slices.Contains(m.MembershipConfig.Learners, 4) && !known
	})
	if r, _ := c.DoLine(t.Context(), "REMOVE_NODE x"); !r.IsErr() {
		t.Fatalf("REMOVE_NODE x = %q", r.String())
	}
}

// TestRestartOnNewAddress restarts a follower on another Raft port with its
// data: the leader learns the new address from its heartbeats and the node
// serves again.
func TestRestartOnNewAddress(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, nil)
	leader := nodetest.RaftLeader(t, nodes)
	victim := nodes[leader.ID()%3]
	ctx := t.Context()
	c := nodetest.Dial(t, leader)
	if err := c.Put(ctx, "addr", []byte("before")); err != nil {
		t.Fatal(err)
	}
	victim.Stop(t)
	cfg := victim.Config
	cfg.RaftPort, cfg.ClientPort = 0, 0 // new ports
	cfg.Join = nil
	moved := nodetest.Start(t, cfg, victim.Store)
	defer moved.Stop(t)
	nodetest.Eventually(t, 30*time.Second, "new address in the Raft configuration", func() bool {
		m, err := leader.Consensus().Membership()
		return err == nil && m.Addrs[moved.ID()] == moved.RaftAddr() && slices.Contains(m.Voters, moved.ID())
	})
	nodetest.Eventually(t, 30*time.Second, "moved node caught up", func() bool {
		return moved.Consensus().Raft().AppliedIndex() >= leader.Consensus().Raft().CommitIndex()-1
	})
	if err := nodetest.Dial(t, moved).Put(ctx, "addr", []byte("after")); err != nil {
		t.Fatal(err)
	}
}
