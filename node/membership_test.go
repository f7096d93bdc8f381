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
