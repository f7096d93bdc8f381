package router

import (
	"context"
	"sync"

	"github.com/walrus-go/walrus/node/wire"
)

// Bounds of the forwarding batcher.
const (
	forwardQueueCap    = 4096 // ops waiting per (topic, leader)
	forwardMaxInflight = 2    // concurrent append RPCs per (topic, leader)
)

// forwarders batch the appends this node forwards to segment leaders: all
// PUTs for one topic that arrive (from any connection) while earlier
// batches are in flight travel in one RPC and land in one store Append on
// the leader. There is one goroutine per (topic, leader) plus at most
// forwardMaxInflight RPCs each; stopAll stops them.
type forwarders struct {
	mu      sync.Mutex
	m       map[fwdKey]*forwarder
	stop    chan struct{}
	stopped bool
	wg      sync.WaitGroup
}

func (s *forwarders) init() {
	s.m = map[fwdKey]*forwarder{}
	s.stop = make(chan struct{})
}

func (s *forwarders) stopAll() {
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		close(s.stop)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

type fwdKey struct {
	leader uint64
	topic  string
}

type fwdOp struct {
	entries [][]byte
	bytes   int
	done    chan error
}

type forwarder struct {
	r      *Router
	topic  string
	leader uint64
	ops    chan *fwdOp
	sem    chan struct{}
}

func (r *Router) forwarder(topic string, leader uint64) (*forwarder, error) {
	s := &r.fwd
	key := fwdKey{leader: leader, topic: topic}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, wire.ErrShuttingDown
	}
	if f, ok := s.m[key]; ok {
		return f, nil
	}
	f := &forwarder{r: r, topic: topic, leader: leader, ops: make(chan *fwdOp, forwardQueueCap), sem: make(chan struct{}, forwardMaxInflight)}
	s.m[key] = f
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f.run(s.stop)
	}()
	return f, nil
}

func (f *forwarder) run(stop <-chan struct{}) {
	for {
		var first *fwdOp
		select {
		case <-stop:
			f.drainFail()
			return
		case first = <-f.ops:
		}
		// Wait for an RPC slot first: what queues up meanwhile joins this
		// batch.
		select {
		case f.sem <- struct{}{}:
		case <-stop:
			first.done <- wire.ErrShuttingDown
			f.drainFail()
			return
		}
		batch := []*fwdOp{first}
		entries, bytes := len(first.entries), first.bytes
	more:
		for entries < wire.MaxAppendEntries && bytes < wire.MaxAppendBytes {
			select {
			case op := <-f.ops:
				batch = append(batch, op)
				entries += len(op.entries)
				bytes += op.bytes
			default:
				break more
			}
		}
		f.send(batch, entries)
	}
}

func (f *forwarder) drainFail() {
	for {
		select {
		case op := <-f.ops:
			op.done <- wire.ErrShuttingDown
		default:
			return
		}
	}
}

// send issues one asynchronous append RPC for the batch; its callback
// releases the RPC slot and answers every op.
func (f *forwarder) send(batch []*fwdOp, entries int) {
	var all [][]byte
	if len(batch) == 1 {
		all = batch[0].entries
	} else {
		all = make([][]byte, 0, entries)
		for _, op := range batch {
			all = append(all, op.entries...)
		}
	}
	f.r.Peer(f.leader).AppendAsync(f.topic, all, func(err error) {
		f.r.Metrics.ObserveForward("append", err)
		<-f.sem
		for _, op := range batch {
			op.done <- err
		}
	})
}

// forward sends entries to the topic's segment leader through the
// batcher.
func (r *Router) forward(ctx context.Context, leader uint64, topic string, entries [][]byte) error {
	f, err := r.forwarder(topic, leader)
	if err != nil {
		return err
	}
	b := 0
	for _, e := range entries {
		b += len(e)
	}
	op := &fwdOp{entries: entries, bytes: b, done: make(chan error, 1)}
	// Fast path: nothing queued and an RPC slot free, so batching would not
	// gain anything: send from this goroutine.
	if len(f.ops) == 0 {
		select {
		case f.sem <- struct{}{}:
			f.send([]*fwdOp{op}, len(entries))
			return waitFwd(ctx, op)
		default:
		}
	}
	select {
	case f.ops <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-r.Stopping:
		return wire.ErrShuttingDown
	}
	return waitFwd(ctx, op)
}

func waitFwd(ctx context.Context, op *fwdOp) error {
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
