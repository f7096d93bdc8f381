// Package contact owns a segment leader's proof of contact with the Raft
// leader: a leader may use its leases only while it has heard from the
// Raft leader within half the failure timeout (so it stops appending
// before the cluster can move its segments elsewhere). It also fixes the
// boot index, the commit index applied at the first proof after start.
package contact

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/node/retry"
)

// Prover proves contact with the Raft leader (or is it) and returns when
// it asked and the commit index it applied up to.
type Prover interface {
	ConfirmContact(ctx context.Context) (time.Time, uint64, error)
}

// Clock is when this node last proved contact and last tried to.
type Clock struct {
	Prover         Prover
	FailureTimeout time.Duration
	// Draining: the node is stopping and uses no lease.
	Draining func() bool
	// Leading: the node leads at least one open segment.
	Leading func() bool

	confirmed, attempted atomic.Int64 // unix ns
	mu                   sync.Mutex   // one confirmation at a time
	bootIndex            atomic.Uint64
}

// SetBootIndex sets the boot index when it is known at start.
func (c *Clock) SetBootIndex(i uint64) { c.bootIndex.Store(i) }

// BootIndex is the Raft commit index this node had applied when it first
// proved contact after starting (0: not yet). A segment opened after it
// was led by this process from its first entry.
func (c *Clock) BootIndex() uint64 { return c.bootIndex.Load() }

// valid is how long a confirmation lets this node use its leases.
func (c *Clock) valid() time.Duration { return c.FailureTimeout / 2 }

// Fresh reports whether this node may use its leases now: it is not
// draining and proved contact within valid. A node that has not tried for
// that long (it led nothing) confirms now.
func (c *Clock) Fresh() bool {
	if c.Draining() {
		return false
	}
	if time.Since(time.Unix(0, c.confirmed.Load())) < c.valid() {
		return true
	}
	if time.Since(time.Unix(0, c.attempted.Load())) < c.valid() {
		return false // the background confirmation is failing: fail fast
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.valid())
	defer cancel()
	c.confirm(ctx)
	return time.Since(time.Unix(0, c.confirmed.Load())) < c.valid()
}

// confirm proves contact once.
func (c *Clock) confirm(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempted.Store(time.Now().UnixNano())
	at, index, err := c.Prover.ConfirmContact(ctx)
	if err != nil {
		return
	}
	// The first proof after start tells which segments opened while this
	// node was up: only those are known to be whole in its store.
	c.bootIndex.CompareAndSwap(0, max(index, 1))
	if at.UnixNano() > c.confirmed.Load() {
		c.confirmed.Store(at.UnixNano())
	}
}

// Run keeps the proof fresh while this node leads segments (and until the
// boot index is known), until ctx ends.
func (c *Clock) Run(ctx context.Context) {
	every := min(max(c.FailureTimeout/8, 20*time.Millisecond), 250*time.Millisecond)
	retry.Every(ctx, every, func(ctx context.Context) {
		if (c.Leading() || c.bootIndex.Load() == 0) && !c.Draining() {
			cctx, cancel := context.WithTimeout(ctx, c.valid())
			c.confirm(cctx)
			cancel()
		}
	})
}
