package kidem

import (
	"context"
	"fmt"
	"sync"

	"github.com/walrus-go/walrus/node/metadata"
)

// Blocks is where the metadata says which block of producer ids a node
// got last (metadata.FSM).
type Blocks interface {
	ProducerBlock(node uint64) (uint64, bool)
	Changed() <-chan struct{}
}

// IDs hands out Kafka producer ids from the blocks the metadata gives
// this node (metadata.AllocProducerIDs): unique across the cluster and
// never reused, a restart just asks for a new block.
type IDs struct {
	self   uint64
	blocks Blocks
	alloc  func(ctx context.Context, node uint64) error

	mu        sync.Mutex
	next, end uint64
}

// NewIDs hands out ids for node self; alloc asks the Raft leader for a
// new block.
func NewIDs(self uint64, blocks Blocks, alloc func(ctx context.Context, node uint64) error) *IDs {
	return &IDs{self: self, blocks: blocks, alloc: alloc}
}

// Next returns a new producer id.
func (p *IDs) Next(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next == p.end {
		old, had := p.blocks.ProducerBlock(p.self)
		if err := p.alloc(ctx, p.self); err != nil {
			return 0, fmt.Errorf("kafka: allocate producer ids: %w", err)
		}
		for {
			changed := p.blocks.Changed()
			if b, ok := p.blocks.ProducerBlock(p.self); ok && (!had || b != old) {
				p.next, p.end = b, b+metadata.ProducerBlockSize
				break
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return 0, fmt.Errorf("kafka: wait for a producer id block: %w", ctx.Err())
			}
		}
	}
	id := p.next
	p.next++
	return int64(id), nil
}
