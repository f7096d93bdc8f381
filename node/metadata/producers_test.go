package metadata

import (
	"errors"
	"io"
	"testing"
)

// Producer id blocks never overlap, only grow, survive a snapshot, and a
// removed node's block is forgotten (its ids are not handed out again).
func TestAllocProducerIDs(t *testing.T) {
	f := NewFSM()
	var got []uint64
	for _, node := range []uint64{1, 2, 1} {
		b, err := Encode(AllocProducerIDs{Node: node})
		if err != nil {
			t.Fatal(err)
		}
		cmd, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if r := mustApply(t, f, cmd); r.Status != Applied {
			t.Fatalf("alloc for %d: %+v", node, r)
		}
		start, ok := f.ProducerBlock(node)
		if !ok {
			t.Fatalf("node %d has no block", node)
		}
		got = append(got, start)
	}
	if got[0] != 1 || got[1] != 1+ProducerBlockSize || got[2] != 1+2*ProducerBlockSize {
		t.Fatalf("blocks %v", got)
	}
	if r := mustApply(t, f, AllocProducerIDs{}); !errors.Is(r.Err, ErrInvalidCommand) {
		t.Fatalf("node 0: %+v", r)
	}
	snap, _ := f.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM()
	if err := g.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	mustApply(t, g, UpsertNode{Node: Node{ID: 2, RaftAddr: "x"}})
	mustApply(t, g, RemoveNode{ID: 2})
	if _, ok := g.ProducerBlock(2); ok {
		t.Fatal("a removed node kept its block")
	}
	mustApply(t, g, AllocProducerIDs{Node: 3})
	if b, _ := g.ProducerBlock(3); b != 1+3*ProducerBlockSize {
		t.Fatalf("after a restore the next block starts at %d", b)
	}
}
