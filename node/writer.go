package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/walrus-go/walrus/engine"
)

// Bounds of the per-topic writer.
const (
	writerQueueCap     = 4096    // ops waiting for a writer goroutine
	maxAppendEntries   = 8192    // entries per store Append
	maxAppendBytes     = 8 << 20 // payload bytes per store Append
	writerDrainOpLimit = 1024    // ops taken per wake-up
)

type opKind uint8

const (
	opAppend opKind = iota + 1
	opFence
	opUnfence
	opSeal
)

type writeOp struct {
	kind    opKind
	entries [][]byte
	bytes   int
	seg     uint64 // fence, unfence, seal
	min     uint64 // fence: only fence when count >= min
	// Exactly one of done and cb receives the result.
	done chan writeResult
	cb   func(writeResult)
}

func (op *writeOp) finish(r writeResult) {
	if op.cb != nil {
		op.cb(r)
		return
	}
	op.done <- r
}

type writeResult struct {
	err    error
	count  uint64 // fence: entries in the segment
	fenced bool
}

// writerSet owns one writer goroutine per topic this node has written.
type writerSet struct {
	mu      sync.Mutex
	m       map[string]*topicWriter
	stop    chan struct{}
	stopped bool
	wg      sync.WaitGroup
}

func (s *writerSet) init() {
	s.m = map[string]*topicWriter{}
	s.stop = make(chan struct{})
}

// topicWriter serialises everything that changes one topic's segments on
// this node: appends (batched into one store Append per wake-up: group
// commit), fences, unfences and seals. Because a fence is an op in the same
// queue, the count it reports includes every append queued before it and
// no append queued after it.
type topicWriter struct {
	n     *Node
	topic string
	ops   chan *writeOp
	// mu is held while ops are processed: by the writer goroutine, or by a
	// caller that found the writer idle and processes its own op inline
	// (saving two goroutine hand-offs per uncontended request). Everything
	// below is guarded by it.
	mu sync.Mutex
	// fencedSeg is the segment fenced for rollover (0 = none); only the
	// writer goroutine touches it.
	fencedSeg uint64
	// hintedSeg is the last segment reported full to the monitor.
	hintedSeg uint64
}

func (n *Node) writer(topic string) (*topicWriter, error) {
	s := &n.writers
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, ErrShuttingDown
	}
	if w, ok := s.m[topic]; ok {
		return w, nil
	}
	w := &topicWriter{n: n, topic: topic, ops: make(chan *writeOp, writerQueueCap)}
	s.m[topic] = w
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		w.run(s.stop)
	}()
	return w, nil
}

// stopAll stops every writer goroutine; queued ops fail with
// ErrShuttingDown.
func (s *writerSet) stopAll() {
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		close(s.stop)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// submit queues op and waits for its result.
func (n *Node) submit(ctx context.Context, topic string, op *writeOp) writeResult {
	w, err := n.writer(topic)
	if err != nil {
		return writeResult{err: err}
	}
	op.done = make(chan writeResult, 1)
	if w.tryInline(op) {
		return <-op.done
	}
	select {
	case w.ops <- op:
	case <-ctx.Done():
		return writeResult{err: ctx.Err()}
	case <-n.writers.stop:
		return writeResult{err: ErrShuttingDown}
	}
	select {
	case r := <-op.done:
		return r
	case <-ctx.Done():
		// The op may still execute; the caller retries or reports.
		return writeResult{err: ctx.Err()}
	}
}

func (w *topicWriter) run(stop <-chan struct{}) {
	batch := make([]*writeOp, 0, 64)
	for {
		select {
		case <-stop:
			w.drainFail()
			return
		case op := <-w.ops:
			batch = append(batch[:0], op)
		}
	more:
		for len(batch) < writerDrainOpLimit {
			select {
			case op := <-w.ops:
				batch = append(batch, op)
			default:
				break more
			}
		}
		w.mu.Lock()
		w.process(batch)
		w.mu.Unlock()
		clear(batch)
	}
}

// tryInline processes op on the caller's goroutine when nothing is queued
// and no one is processing; it reports whether it did.
func (w *topicWriter) tryInline(op *writeOp) bool {
	if len(w.ops) > 0 || !w.mu.TryLock() {
		return false
	}
	defer w.mu.Unlock()
	select {
	case <-w.n.writers.stop:
		op.finish(writeResult{err: ErrShuttingDown})
		return true
	default:
	}
	w.process([]*writeOp{op})
	return true
}

func (w *topicWriter) drainFail() {
	for {
		select {
		case op := <-w.ops:
			op.finish(writeResult{err: ErrShuttingDown})
		default:
			return
		}
	}
}

func (w *topicWriter) process(ops []*writeOp) {
	start := 0
	for i, op := range ops {
		if op.kind == opAppend {
			continue
		}
		w.flush(ops[start:i])
		start = i + 1
		op.finish(w.control(op))
	}
	w.flush(ops[start:])
}

// flush appends a run of append ops, in as few store Appends as the
// bounds allow.
func (w *topicWriter) flush(ops []*writeOp) {
	if len(ops) == 0 {
		return
	}
	seg, ok := w.n.leaseFor(w.topic)
	if ok && !w.n.leaseFresh() {
		// Out of touch with the Raft leader: the cluster may be moving this
		// segment elsewhere, so stop acknowledging appends.
		ok = false
	}
	if !ok {
		r, _ := w.n.fsm.Route(w.topic)
		err := &NotLeaderError{Topic: w.topic, Segment: r.Segment, Leader: r.Leader}
		if w.n.notLeaderLog.allow(timeSecond) {
			w.n.logger.Warn("NotLeaderError", "topic", w.topic, "segment", r.Segment, "leader", r.Leader)
		}
		for _, op := range ops {
			op.finish(writeResult{err: err})
		}
		return
	}
	if w.fencedSeg == seg {
		for _, op := range ops {
			op.finish(writeResult{err: fmt.Errorf("topic %s segment %d: %w", w.topic, seg, ErrFenced)})
		}
		return
	}
	id := engine.SegmentID{Topic: w.topic, Segment: seg}
	// A replicated segment answers its ops once the ack quorum holds them
	// (replicator.go); a fenced one refuses before appending anything.
	rep, rerr := w.n.replicatorFor(w.topic, seg)
	if rerr == nil && rep != nil {
		rerr = rep.refuse()
	}
	if rerr != nil {
		for _, op := range ops {
			op.finish(writeResult{err: rerr})
		}
		return
	}
	for len(ops) > 0 {
		// Take ops while they fit the per-Append bounds (always at least one).
		n, entries, bytes := 0, 0, 0
		for n < len(ops) {
			op := ops[n]
			if n > 0 && (entries+len(op.entries) > maxAppendEntries || bytes+op.bytes > maxAppendBytes) {
				break
			}
			entries += len(op.entries)
			bytes += op.bytes
			n++
		}
		var all [][]byte
		if n == 1 {
			all = ops[0].entries
		} else {
			all = make([][]byte, 0, entries)
			for _, op := range ops[:n] {
				all = append(all, op.entries...)
			}
		}
		first, err := w.n.store.Append(context.Background(), id, all)
		if err == nil {
			w.n.m.ObserveAppend(w.topic, entries, bytes)
			if first+uint64(len(all)) >= w.n.cfg.MaxSegmentEntries && w.hintedSeg != seg {
				// Full: ask the monitor to roll now rather than at its next
				// tick, so segments stay close to MaxSegmentEntries.
				w.hintedSeg = seg
				w.n.hintRollover(w.topic)
			}
		} else {
			err = fmt.Errorf("append %s: %w", id, err)
		}
		if err == nil && rep != nil {
			rep.appended(first, all, slices.Clone(ops[:n]))
			ops = ops[n:]
			continue
		}
		for _, op := range ops[:n] {
			op.finish(writeResult{err: err})
		}
		ops = ops[n:]
	}
}

func (w *topicWriter) control(op *writeOp) writeResult {
	id := engine.SegmentID{Topic: w.topic, Segment: op.seg}
	switch op.kind {
	case opFence:
		seg, ok := w.n.leaseFor(w.topic)
		if !ok || seg != op.seg {
			r, _ := w.n.fsm.Route(w.topic)
			return writeResult{err: &NotLeaderError{Topic: w.topic, Segment: op.seg, Leader: r.Leader}}
		}
		count, err := w.n.segmentCount(id)
		if err != nil {
			return writeResult{err: err}
		}
		if w.fencedSeg == op.seg {
			// Still fenced from an earlier attempt whose rollover proposal
			// had an unknown outcome: report the same exact count again.
			return writeResult{count: count, fenced: true}
		}
		if count < op.min {
			return writeResult{count: count}
		}
		w.fencedSeg = op.seg
		return writeResult{count: count, fenced: true}
	case opUnfence:
		if w.fencedSeg == op.seg {
			w.fencedSeg = 0
		}
		return writeResult{}
	case opSeal:
		if w.fencedSeg == op.seg {
			w.fencedSeg = 0
		}
		if _, err := w.n.store.Seal(context.Background(), id); err != nil && !errors.Is(err, engine.ErrNotFound) {
			// Sealing follows a lost lease; appends are refused anyway.
			w.n.logger.Error("Lease sync failed", "topic", w.topic, "segment", op.seg, "err", err)
			w.n.m.LeaseSyncFailures.Inc()
			return writeResult{err: fmt.Errorf("seal %s: %w", id, err)}
		}
		return writeResult{}
	}
	return writeResult{err: fmt.Errorf("writer: unknown op %d", op.kind)}
}

// segmentCount returns the entries the store holds for id (0 when the
// segment was never written).
func (n *Node) segmentCount(id engine.SegmentID) (uint64, error) {
	info, err := n.store.Stat(context.Background(), id)
	if errors.Is(err, engine.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", id, err)
	}
	return info.Entries, nil
}

// appendLocal appends entries to the topic's open segment on this node.
func (n *Node) appendLocal(ctx context.Context, topic string, entries [][]byte) error {
	b := 0
	for _, e := range entries {
		b += len(e)
	}
	return n.submit(ctx, topic, &writeOp{kind: opAppend, entries: entries, bytes: b}).err
}

// appendAsync queues entries for the topic's writer without blocking; cb
// gets the result. It returns false when the queue is full (the caller
// falls back to the blocking path).
func (n *Node) appendAsync(topic string, entries [][]byte, cb func(error)) bool {
	w, err := n.writer(topic)
	if err != nil {
		cb(err)
		return true
	}
	b := 0
	for _, e := range entries {
		b += len(e)
	}
	op := &writeOp{kind: opAppend, entries: entries, bytes: b, cb: func(r writeResult) { cb(r.err) }}
	if w.tryInline(op) {
		return true
	}
	select {
	case w.ops <- op:
		return true
	default:
		return false
	}
}

// fenceLocal fences seg if it holds >= min entries and returns its count.
func (n *Node) fenceLocal(ctx context.Context, topic string, seg, min uint64) (uint64, bool, error) {
	r := n.submit(ctx, topic, &writeOp{kind: opFence, seg: seg, min: min})
	if r.err == nil && r.fenced {
		// A replicated segment is sealed only at a count its ack quorum
		// holds, so every entry below the sealed count stays readable if
		// this node dies right after the rollover.
		c, err := n.confirmedCount(ctx, topic, seg, r.count)
		if err != nil {
			return 0, false, err
		}
		r.count = c
	}
	return r.count, r.fenced, r.err
}

func (n *Node) unfenceLocal(ctx context.Context, topic string, seg uint64) error {
	err := n.submit(ctx, topic, &writeOp{kind: opUnfence, seg: seg}).err
	if err == nil {
		n.uncap(topic, seg)
	}
	return err
}

// enqueueSeal asks the topic's writer to seal seg in the store without
// waiting: it is defensive (appends to a segment whose lease is gone are
// refused anyway), so a full queue just skips it.
func (n *Node) enqueueSeal(topic string, seg uint64) {
	w, err := n.writer(topic)
	if err != nil {
		return
	}
	select {
	case w.ops <- &writeOp{kind: opSeal, seg: seg, done: make(chan writeResult, 1)}:
	default:
	}
}
