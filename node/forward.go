package node

import (
	"context"
	"sync"
)

// Bounds of the forwarding batcher.
const (
	forwardQueueCap    = 4096 // ops waiting per (topic, leader)
	forwardMaxInflight = 2    // concurrent append RPCs per (topic, leader)
)

// forwarderSet batches appends this node forwards to segment leaders: all
// PUTs for one topic that arrive (from any connection) while earlier
// batches are in flight travel in one RPC and land in one store Append on
// the leader. It owns one goroutine per (topic, leader) plus at most
// forwardMaxInflight RPC goroutines each; stopAll stops them.
type forwarderSet struct {
	mu      sync.Mutex
	m       map[fwdKey]*forwarder
	stop    chan struct{}
	stopped bool
	wg      sync.WaitGroup
}

func (s *forwarderSet) init() {
	s.m = map[fwdKey]*forwarder{}
	s.stop = make(chan struct{})
}

func (s *forwarderSet) stopAll() {
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
	n      *Node
	topic  string
	leader uint64
	ops    chan *fwdOp
	sem    chan struct{}
}

func (n *Node) forwarder(topic string, leader uint64) (*forwarder, error) {
	s := &n.forwarders
	key := fwdKey{leader: leader, topic: topic}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, ErrShuttingDown
	}
	if f, ok := s.m[key]; ok {
		return f, nil
	}
	f := &forwarder{n: n, topic: topic, leader: leader, ops: make(chan *fwdOp, forwardQueueCap), sem: make(chan struct{}, forwardMaxInflight)}
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
			first.done <- ErrShuttingDown
			f.drainFail()
			return
		}
		batch := []*fwdOp{first}
		entries, bytes := len(first.entries), first.bytes
	more:
		for entries < maxAppendEntries && bytes < maxAppendBytes {
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
			op.done <- ErrShuttingDown
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
	f.n.forwardAppendAsync(f.leader, f.topic, all, func(err error) {
		<-f.sem
		for _, op := range batch {
			op.done <- err
		}
	})
}

// forwardAppend sends entries to the topic's segment leader through the
// batcher.
func (n *Node) forwardAppend(ctx context.Context, leader uint64, topic string, entries [][]byte) error {
	f, err := n.forwarder(topic, leader)
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
	case <-n.stopping:
		return ErrShuttingDown
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
