// Package retry owns the bounded, backed-off retry of requests routed to a
// leader that may be changing: how long to wait between attempts, and what
// wakes a wait early (a metadata change, the node stopping).
package retry

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/node/rpc"
	"github.com/walrus-go/walrus/node/wire"
)

// Bounds of request routing.
const (
	// RequestTimeout bounds one client command, retries included.
	RequestTimeout = 15 * time.Second
	// MaxAttempts bounds the retries of one command.
	MaxAttempts  = 100
	backoffStart = 5 * time.Millisecond
	backoffMax   = 200 * time.Millisecond
)

// Backoff doubles from 5 ms to 200 ms.
type Backoff struct{ d time.Duration }

// Wait sleeps the next backoff step, or less when changed fires. It
// returns ErrShuttingDown when stopping closes, or the context's error.
func (b *Backoff) Wait(ctx context.Context, changed, stopping <-chan struct{}) error {
	if b.d == 0 {
		b.d = backoffStart
	}
	t := time.NewTimer(b.d)
	defer t.Stop()
	b.d = min(2*b.d, backoffMax)
	select {
	case <-changed:
		return nil
	case <-t.C:
		return nil
	case <-stopping:
		return wire.ErrShuttingDown
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Transient reports errors after which a retry may succeed: the target
// lost the lease, the segment is being rolled over, there is no Raft
// leader yet, or the target node is unreachable right now.
func Transient(err error) bool {
	if wire.IsNotLeader(err) || errors.Is(err, wire.ErrFenced) || wire.IsNotRaftLeader(err) || errors.Is(err, wire.ErrNoAddress) {
		return true
	}
	if errors.Is(err, rpc.ErrConnLost) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// Every runs f every interval until ctx ends (the first run is one
// interval after the start).
func Every(ctx context.Context, interval time.Duration, f func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}

// Limit lets one event through per period (for log lines that would
// otherwise repeat per request). The zero value is ready.
type Limit struct{ last atomic.Int64 }

// Allow reports whether an event may pass now.
func (r *Limit) Allow(period time.Duration) bool {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(period) {
		return false
	}
	return r.last.CompareAndSwap(last, now)
}
