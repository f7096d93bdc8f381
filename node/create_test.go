package node_test

import (
	"fmt"
	"testing"

	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/protocol"
)

// TestPipelinedRegistersShareRaftEntries: one connection pipelining 300
// REGISTERs creates every topic, spread over the nodes, in far fewer Raft
// entries than topics.
func TestPipelinedRegistersShareRaftEntries(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, nil)
	leader := nodetest.RaftLeader(t, nodes)
	c := nodetest.Dial(t, nodes[0])
	reqs := make([]protocol.Request, 300)
	for i := range reqs {
		reqs[i] = protocol.Request{Command: protocol.CmdRegister, Topic: fmt.Sprintf("many-%03d", i)}
	}
	before := leader.Consensus().Raft().LastIndex()
	replies, err := c.Pipeline(t.Context(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range replies {
		if r.Kind != protocol.ReplyOK {
			t.Fatalf("REGISTER %d: %s", i, r.String())
		}
	}
	entries := leader.Consensus().Raft().LastIndex() - before
	if entries >= 100 {
		t.Fatalf("300 topics took %d Raft entries; creations are not batched", entries)
	}
	leaders := map[uint64]int{}
	for i := range reqs {
		tp, ok := nodes[0].Metadata().Topic(reqs[i].Topic)
		if !ok {
			t.Fatalf("topic %s missing", reqs[i].Topic)
		}
		leaders[tp.LeaderNode]++
	}
	if len(leaders) != 3 {
		t.Fatalf("first segments led by %v: not spread over the nodes", leaders)
	}
	t.Logf("300 topics in %d Raft entries, leaders %v", entries, leaders)
}
