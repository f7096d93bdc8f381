// Package applyq owns the replica apply queues: one queue and goroutine
// per segment streamed to this node, so a slow disk holds up only that
// segment, not the connection that also carries heartbeats and other
// segments' batches. A queue with no work goes away after an idle period.
package applyq

import (
	"context"
	"sync"
	"time"

	"github.com/walrus-go/walrus/node/segment/meta"
)

// Bounds of the queues.
const (
	queueCap = 64              // batches waiting per segment
	idleFor  = 5 * time.Second // a queue with no work for this long goes away
)

// ApplyFunc stores entries of a segment at offset first under epoch and
// returns the count afterwards (the replica append).
type ApplyFunc func(ctx context.Context, topic string, seg, epoch, first uint64, entries [][]byte) (uint64, error)

type op struct {
	first, epoch uint64
	entries      [][]byte
	cb           func(uint64, error)
}

type queue struct {
	ops     chan op
	pending int // guarded by Queues.mu
}

// Queues applies each segment's batches in arrival order.
type Queues struct {
	apply ApplyFunc
	// closed answers batches queued after Close.
	closedErr error

	mu      sync.Mutex
	queues  map[meta.Key]*queue
	stop    chan struct{}
	stopped bool
	wg      sync.WaitGroup
}

// New makes the queues; batches that arrive after Close get closedErr.
func New(apply ApplyFunc, closedErr error) *Queues {
	return &Queues{apply: apply, closedErr: closedErr, queues: map[meta.Key]*queue{}, stop: make(chan struct{})}
}

// Enqueue queues a batch for its segment; cb gets the count afterwards.
func (q *Queues) Enqueue(topic string, seg, epoch, first uint64, entries [][]byte, cb func(uint64, error)) {
	k := meta.Key{Topic: topic, Segment: seg}
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		cb(0, q.closedErr)
		return
	}
	a, ok := q.queues[k]
	if !ok {
		a = &queue{ops: make(chan op, queueCap)}
		q.queues[k] = a
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			q.run(k, a)
		}()
	}
	a.pending++
	q.mu.Unlock()
	select {
	case a.ops <- op{first: first, epoch: epoch, entries: entries, cb: cb}:
	case <-q.stop:
		q.mu.Lock()
		a.pending--
		q.mu.Unlock()
		cb(0, q.closedErr)
	}
}

func (q *Queues) run(k meta.Key, a *queue) {
	idle := time.NewTimer(idleFor)
	defer idle.Stop()
	for {
		select {
		case o := <-a.ops:
			o.cb(q.apply(context.Background(), k.Topic, k.Segment, o.epoch, o.first, o.entries))
			q.mu.Lock()
			a.pending--
			q.mu.Unlock()
			idle.Reset(idleFor)
		case <-idle.C:
			q.mu.Lock()
			if a.pending == 0 {
				delete(q.queues, k)
				q.mu.Unlock()
				return
			}
			q.mu.Unlock()
			idle.Reset(idleFor)
		case <-q.stop:
			for {
				select {
				case o := <-a.ops:
					o.cb(0, q.closedErr)
				default:
					return
				}
			}
		}
	}
}

// Close stops every queue, waits for their goroutines and answers what is
// still queued with the closed error.
func (q *Queues) Close() {
	q.mu.Lock()
	if !q.stopped {
		q.stopped = true
		close(q.stop)
	}
	q.mu.Unlock()
	q.wg.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	for k, a := range q.queues {
		for done := false; !done; {
			select {
			case o := <-a.ops:
				o.cb(0, q.closedErr)
			default:
				done = true
			}
		}
		delete(q.queues, k)
	}
}
