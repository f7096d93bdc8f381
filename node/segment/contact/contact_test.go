package contact

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

type prover struct {
	fail  atomic.Bool
	calls atomic.Int64
}

func (p *prover) ConfirmContact(context.Context) (time.Time, uint64, error) {
	p.calls.Add(1)
	if p.fail.Load() {
		return time.Time{}, 0, errors.New("no Raft leader")
	}
	return time.Now(), 42, nil
}

func TestFreshOnlyWithRecentProof(t *testing.T) {
	p := &prover{}
	draining := atomic.Bool{}
	c := &Clock{Prover: p, FailureTimeout: 100 * time.Millisecond, Draining: draining.Load, Leading: func() bool { return true }}
	if !c.Fresh() {
		t.Fatal("not fresh although the Raft leader answers")
	}
	if c.BootIndex() != 42 {
		t.Fatalf("boot index %d, want the first proof's 42", c.BootIndex())
	}
	p.fail.Store(true)
	if err := testcluster.Poll(5*time.Second, func() error {
		if c.Fresh() {
			return errors.New("still fresh long after the Raft leader stopped answering")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	calls := p.calls.Load()
	if c.Fresh() || p.calls.Load() != calls {
		t.Fatal("a failing proof was retried at once instead of failing fast")
	}
	p.fail.Store(false)
	draining.Store(true)
	if c.Fresh() {
		t.Fatal("fresh while draining")
	}
}
