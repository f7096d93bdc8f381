package router

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/walrus-go/walrus/node/wire"
)

// Bounds and policy of the forwarding batcher.
const (
	forwardQueueCap    = 4096 // ops waiting per (topic, leader)
	forwardMaxInflight = 4    // concurrent append RPCs per (topic, leader)
	// While an RPC is in flight, another one starts only once the waiting
	// ops add up to this many entries or bytes; smaller batches wait for a
	// reply. Each RPC wakes the leader up, which costs it about as much CPU
	// as serving a client request, so under synchronous load one RPC should
	// carry every request that arrived during the previous one; pipelined
	// load fills batches this large at once and keeps several in flight.
	forwardEagerEntries = 256
	forwardEagerBytes   = 64 << 10
)

// forwarders batch the appends this node forwards to segment leaders: all
// PUTs for one topic that arrive (from any connection) while earlier
// batches are in flight travel in one RPC and land in one store Append on
// the leader. The batcher owns no goroutine: a batch is sent by the
// goroutine of a request in it (the caller whose request found the
// forwarder idle, or, after a reply, a caller woken by that reply), so no
// request waits for a hand-off to another goroutine. stopAll fails what is
// queued.
type forwarders struct {
	mu      sync.Mutex
	m       map[fwdKey]*forwarder
	stopped bool
}

func (s *forwarders) init() {
	s.m = map[fwdKey]*forwarder{}
}

func (s *forwarders) stopAll() {
	s.mu.Lock()
	s.stopped = true
	fs := make([]*forwarder, 0, len(s.m))
	for _, f := range s.m {
		fs = append(fs, f)
	}
	s.mu.Unlock()
	for _, f := range fs {
		f.stop()
	}
}

type fwdKey struct {
	leader uint64
	topic  string
}

// States of a forwarded op. The waiter moves an op from queued or sent to
// abandoned when its context ends; the batcher moves it from queued to
// sent when it joins a batch, and from sent to claimed when it gives the
// waiter a batch to send (a claimed op's waiter always reads done).
const (
	opQueued int32 = iota
	opSent
	opClaimed
	opAbandoned
)

type fwdOp struct {
	entries [][]byte
	bytes   int
	state   atomic.Int32
	// done carries at most one message at a time: a batch to send (while
	// the op waits) and then its result.
	done chan fwdMsg
}

// fwdMsg is what a waiter is told: send next (if set), and, if final,
// return err.
type fwdMsg struct {
	err   error
	final bool
	next  *fwdBatch
}

type fwdBatch struct {
	ops     []*fwdOp
	entries int
}

type forwarder struct {
	r      *Router
	topic  string
	leader uint64
	// users counts forward calls using f (guarded by forwarders.mu): the
	// last one out removes f from the map, so the map holds only topics
	// with PUTs in progress (a removed f keeps working for batches still
	// in flight).
	users int

	mu       sync.Mutex
	queue    []*fwdOp
	qEntries int
	qBytes   int
	inflight int
	stopped  bool
	// space is closed when the queue drops below its cap (nil while no
	// one waits for that).
	space chan struct{}
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
		f.users++
		return f, nil
	}
	f := &forwarder{r: r, topic: topic, leader: leader, users: 1}
	s.m[key] = f
	return f, nil
}

func (r *Router) releaseForwarder(f *forwarder) {
	s := &r.fwd
	s.mu.Lock()
	defer s.mu.Unlock()
	f.users--
	if key := (fwdKey{leader: f.leader, topic: f.topic}); f.users == 0 && s.m[key] == f {
		delete(s.m, key)
	}
}

// stop fails every queued op; batches in flight end with their RPCs.
func (f *forwarder) stop() {
	f.mu.Lock()
	f.stopped = true
	q := f.queue
	f.queue, f.qEntries, f.qBytes = nil, 0, 0
	if f.space != nil {
		close(f.space)
		f.space = nil
	}
	f.mu.Unlock()
	for _, op := range q {
		if op.state.CompareAndSwap(opQueued, opSent) {
			op.done <- fwdMsg{err: wire.ErrShuttingDown, final: true}
		}
	}
}

// takeLocked returns the next batch to send, or nil when the policy says
// to wait: nothing queued, forwardMaxInflight RPCs in flight, or one in
// flight and too little queued to be worth another. Ops whose waiter gave
// up are dropped rather than sent. The caller must send what it gets.
func (f *forwarder) takeLocked() *fwdBatch {
	for len(f.queue) > 0 && !f.stopped {
		if f.inflight >= forwardMaxInflight ||
			f.inflight > 0 && f.qEntries < forwardEagerEntries && f.qBytes < forwardEagerBytes {
			return nil
		}
		b := &fwdBatch{}
		bytes, n := 0, 0
		for ; n < len(f.queue); n++ {
			op := f.queue[n]
			if n > 0 && (b.entries+len(op.entries) > wire.MaxAppendEntries || bytes+op.bytes > wire.MaxAppendBytes) {
				break
			}
			f.qEntries -= len(op.entries)
			f.qBytes -= op.bytes
			if !op.state.CompareAndSwap(opQueued, opSent) {
				continue // abandoned
			}
			b.ops = append(b.ops, op)
			b.entries += len(op.entries)
			bytes += op.bytes
		}
		rest := copy(f.queue, f.queue[n:])
		clear(f.queue[rest:])
		f.queue = f.queue[:rest]
		if f.space != nil {
			close(f.space)
			f.space = nil
		}
		if len(b.ops) > 0 {
			f.inflight++
			return b
		}
	}
	return nil
}

// send issues one asynchronous append RPC for b. It runs on the goroutine
// of a caller waiting for an op, never on the RPC connection's reader
// (send may write to the connection).
func (f *forwarder) send(b *fwdBatch) {
	parts := make([][][]byte, len(b.ops))
	for i, op := range b.ops {
		parts[i] = op.entries
	}
	f.r.Peer(f.leader).AppendPartsAsync(f.topic, parts, func(err error) { f.complete(b, err) })
}

// complete answers the ops of a finished batch. It runs on the RPC
// connection's reader, so it must neither block nor send: the next batch
// goes to a waiter that is woken anyway (one of b's), or, when all of
// b's gave up, to a waiter of the next batch itself.
func (f *forwarder) complete(b *fwdBatch, err error) {
	f.r.Metrics.ObserveForward("append", err)
	f.mu.Lock()
	f.inflight--
	next := f.takeLocked()
	f.mu.Unlock()
	// The waiter readied last runs first on this P (Go's runnext): make it
	// the one that sends next.
	duty := -1
	for i := len(b.ops) - 1; i >= 0 && next != nil; i-- {
		if b.ops[i].state.CompareAndSwap(opSent, opClaimed) {
			duty = i
			break
		}
	}
	for i, op := range b.ops {
		if i != duty {
			op.done <- fwdMsg{err: err, final: true}
		}
	}
	if duty >= 0 {
		b.ops[duty].done <- fwdMsg{err: err, final: true, next: next}
		return
	}
	for next != nil {
		next = f.handOff(next)
	}
}

// handOff gives b to one of its own waiters to send. When every one of
// them gave up, b is dropped (none of its entries was sent) and the next
// batch, if any, is returned to be handed off in turn.
func (f *forwarder) handOff(b *fwdBatch) *fwdBatch {
	for _, op := range b.ops {
		if op.state.CompareAndSwap(opSent, opClaimed) {
			op.done <- fwdMsg{next: b}
			return nil
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inflight--
	return f.takeLocked()
}

// enqueue adds op to f's queue, waiting (bounded by ctx) while the queue
// is full, and returns a batch the caller must send, if any.
func (f *forwarder) enqueue(ctx context.Context, op *fwdOp) (*fwdBatch, error) {
	f.mu.Lock()
	for len(f.queue) >= forwardQueueCap && !f.stopped {
		if f.space == nil {
			f.space = make(chan struct{})
		}
		space := f.space
		f.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-f.r.Stopping:
			return nil, wire.ErrShuttingDown
		}
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	if f.stopped {
		return nil, wire.ErrShuttingDown
	}
	f.queue = append(f.queue, op)
	f.qEntries += len(op.entries)
	f.qBytes += op.bytes
	return f.takeLocked(), nil
}

// forward sends entries to the topic's segment leader through the
// batcher.
func (r *Router) forward(ctx context.Context, leader uint64, topic string, entries [][]byte) error {
	f, err := r.forwarder(topic, leader)
	if err != nil {
		return err
	}
	defer r.releaseForwarder(f)
	op := &fwdOp{entries: entries, bytes: payloadBytes(entries), done: make(chan fwdMsg, 1)}
	b, err := f.enqueue(ctx, op)
	if err != nil {
		return err
	}
	if b != nil {
		f.send(b)
	}
	return f.wait(ctx, op)
}

// wait waits for op's result, sending the batches handed to it meanwhile.
// Once ctx ends it gives up, unless a batch is being handed to it: then it
// sends that first.
func (f *forwarder) wait(ctx context.Context, op *fwdOp) error {
	expired := false
	for {
		var m fwdMsg
		if expired {
			select {
			case m = <-op.done: // already here: take it
			default:
				if op.state.CompareAndSwap(opQueued, opAbandoned) || op.state.CompareAndSwap(opSent, opAbandoned) {
					return ctx.Err()
				}
				m = <-op.done // claimed: a message is on its way
			}
		} else {
			select {
			case m = <-op.done:
			case <-ctx.Done():
				expired = true
				continue
			}
		}
		if m.next != nil {
			if !m.final {
				op.state.Store(opSent) // op itself is in m.next
			}
			f.send(m.next)
		}
		if m.final {
			return m.err
		}
	}
}

func payloadBytes(entries [][]byte) int {
	b := 0
	for _, e := range entries {
		b += len(e)
	}
	return b
}
