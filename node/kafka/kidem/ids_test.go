package kidem

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/walrus-go/walrus/node/metadata"
)

// fsm is the metadata in memory: AllocProducerIDs applied at once.
type fsm struct {
	mu     sync.Mutex
	f      *metadata.FSM
	fail   bool
	allocs int
}

func (m *fsm) ProducerBlock(node uint64) (uint64, bool) { return m.f.ProducerBlock(node) }
func (m *fsm) Changed() <-chan struct{}                 { return m.f.Changed() }

func (m *fsm) alloc(_ context.Context, node uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("no Raft leader")
	}
	m.allocs++
	b, err := metadata.Encode(metadata.AllocProducerIDs{Node: node})
	if err != nil {
		return err
	}
	m.f.Apply(&raft.Log{Type: raft.LogCommand, Index: uint64(m.allocs), Data: b})
	return nil
}

func TestIDsUniqueAcrossBlocksAndRestarts(t *testing.T) {
	m := &fsm{f: metadata.NewFSM()}
	ctx := context.Background()
	seen := map[int64]bool{}
	a := NewIDs(1, m, m.alloc)
	for range metadata.ProducerBlockSize + 2 {
		id, err := a.Next(ctx)
		if err != nil || id <= 0 || seen[id] {
			t.Fatalf("id %d %v (seen %v)", id, err, seen[id])
		}
		seen[id] = true
	}
	if m.allocs != 2 {
		t.Fatalf("%d blocks for %d ids", m.allocs, metadata.ProducerBlockSize+2)
	}
	for _, node := range []uint64{1, 2} { // node 1 restarted, node 2 new
		id, err := NewIDs(node, m, m.alloc).Next(ctx)
		if err != nil || seen[id] {
			t.Fatalf("node %d: id %d %v", node, id, err)
		}
		seen[id] = true
	}
	m.fail = true
	if _, err := NewIDs(3, m, m.alloc).Next(ctx); err == nil {
		t.Fatal("no error without a block")
	}
}
