package segment

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/record"
	"github.com/walrus-go/walrus/node/segment/meta"
	"github.com/walrus-go/walrus/node/segment/replicate"
	"github.com/walrus-go/walrus/node/wire"
)

// Bounds of the per-topic writer.
const (
	writerQueueCap     = 4096 // ops waiting for a writer goroutine
	writerDrainOpLimit = 1024 // ops taken per wake-up
	// defaultWriterIdle: a writer with no work for this long goes away
	// (with its goroutine and queue), so an idle topic costs no memory
	// here (Config.WriterIdle).
	defaultWriterIdle = 10 * time.Second
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
	// stamped: entries are records the caller encoded (record.Version2 or 3),
	// whose append time the writer stamps in place instead of wrapping.
	stamped bool
	// first is set before the op is answered: the segment offset of its
	// first entry in seg.
	first uint64
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

// Ack implements replicate.Ack.
func (op *writeOp) Ack(err error) { op.finish(writeResult{err: err, seg: op.seg, first: op.first}) }

type writeResult struct {
	err    error
	count  uint64 // fence: entries in the segment
	fenced bool
	// seg and first: where an append's first entry went.
	seg, first uint64
}

// topicWriter serialises everything that changes one topic's segments on
// this node: appends (batched into one store Append per wake-up: group
// commit), fences, unfences and seals. Because a fence is an op in the same
// queue, the count it reports includes every append queued before it and
// no append queued after it.
type topicWriter struct {
	m     *Manager
	topic string
	ops   chan *writeOp
	// mu is held while ops are processed: by the writer goroutine, or by a
	// caller that found the writer idle and processes its own op inline
	// (saving two goroutine hand-offs per uncontended request). Everything
	// below is guarded by it.
	mu sync.Mutex
	// fencedSeg is the segment fenced for rollover (0 = none).
	fencedSeg uint64
	// hintedSeg is the last segment reported full to the monitor.
	hintedSeg uint64
	// stamp is the timestamp state of the segment appended to last.
	stamp stamp
	// users counts callers between getting the writer and queueing their
	// op (guarded by Manager.mu): an idle writer retires only at zero.
	users int
}

// writer returns the topic's writer, starting one if needed; the caller
// calls release once its op is queued or done.
func (m *Manager) writer(topic string) (*topicWriter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped.Load() {
		return nil, wire.ErrShuttingDown
	}
	if w, ok := m.writers[topic]; ok {
		w.users++
		return w, nil
	}
	w := &topicWriter{m: m, topic: topic, ops: make(chan *writeOp, writerQueueCap)}
	// A fence taken before a restart still holds until the rollover is
	// applied (then the lease is gone) or the monitor lifts it.
	if r, ok := m.FSM.Route(topic); ok && r.Leader == m.cfg.Self {
		if fenced, err := m.fences.Has(meta.Key{Topic: topic, Segment: r.Segment}); err != nil {
			return nil, err
		} else if fenced {
			w.fencedSeg = r.Segment
		}
	}
	w.users++
	m.writers[topic] = w
	m.writerWG.Add(1)
	go func() {
		defer m.writerWG.Done()
		w.run(m.stop)
	}()
	return w, nil
}

// Writers and Replicators are how many topics have a writer, and open
// segments a replicator, now (idle ones retire).
func (m *Manager) Writers() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.writers)
}

func (m *Manager) Replicators() int {
	m.repMu.Lock()
	defer m.repMu.Unlock()
	return len(m.reps)
}

func (m *Manager) release(w *topicWriter) {
	m.mu.Lock()
	w.users--
	m.mu.Unlock()
}

// retire removes an idle writer (its goroutine, after it returns true,
// exits): nobody is about to queue, nothing is queued, nothing is being
// processed inline.
func (m *Manager) retire(w *topicWriter) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w.users > 0 || len(w.ops) > 0 || !w.mu.TryLock() {
		return false
	}
	// With w.mu held no append is between getting the replicator and
	// handing it the batch, and m.mu keeps a new writer from starting.
	m.retireReplicator(w.topic)
	w.mu.Unlock() // users is 0 under m.mu: no one can take it again
	if m.writers[w.topic] == w {
		delete(m.writers, w.topic)
	}
	return true
}

// retireReplicator stops the replicator of topic's open segment led here
// if it is idle, keeping the count its quorum confirmed for the next one.
func (m *Manager) retireReplicator(topic string) {
	seg, ok := m.leaseOf(topic)
	if !ok {
		return
	}
	k := segKey{Topic: topic, Segment: seg}
	m.repMu.Lock()
	r := m.reps[k]
	if r == nil || !r.Idle() {
		m.repMu.Unlock()
		return
	}
	delete(m.reps, k)
	m.retiredLAC[k] = r.LAC()
	m.repMu.Unlock()
	r.Fail(false)
}

// submit queues op and waits for its result.
func (m *Manager) submit(ctx context.Context, topic string, op *writeOp) writeResult {
	w, err := m.writer(topic)
	if err != nil {
		return writeResult{err: err}
	}
	defer m.release(w)
	op.done = make(chan writeResult, 1)
	if w.tryInline(op) {
		return <-op.done
	}
	select {
	case w.ops <- op:
	case <-ctx.Done():
		return writeResult{err: ctx.Err()}
	case <-m.stop:
		return writeResult{err: wire.ErrShuttingDown}
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
	writerIdle := cmp.Or(w.m.cfg.WriterIdle, defaultWriterIdle)
	idle := time.NewTimer(writerIdle)
	defer idle.Stop()
	for {
		select {
		case <-stop:
			w.drainFail()
			return
		case <-idle.C:
			if w.m.retire(w) {
				return
			}
			idle.Reset(writerIdle)
			continue
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
		idle.Reset(writerIdle)
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
	case <-w.m.stop:
		op.finish(writeResult{err: wire.ErrShuttingDown})
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
			op.finish(writeResult{err: wire.ErrShuttingDown})
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

func failAll(ops []*writeOp, err error) {
	for _, op := range ops {
		op.Ack(err) // with where the entries went, when err is nil
	}
}

// flush appends a run of append ops, in as few store Appends as the
// bounds allow.
func (w *topicWriter) flush(ops []*writeOp) {
	if len(ops) == 0 {
		return
	}
	m := w.m
	seg, ok := m.leaseFor(w.topic)
	if ok && !m.leaseFresh() {
		// Out of touch with the Raft leader: the cluster may be moving this
		// segment elsewhere, so stop acknowledging appends.
		ok = false
	}
	if ok {
		// The proof of contact applied everything committed before it, but
		// the lease table follows the metadata asynchronously: after a
		// pause it may still name a segment the cluster has sealed and
		// moved. The metadata itself decides.
		if r, found := m.FSM.Route(w.topic); !found || r.Segment != seg || r.Leader != m.cfg.Self {
			ok = false
		}
	}
	if !ok {
		r, _ := m.FSM.Route(w.topic)
		if m.notLeaderLog.Allow(time.Second) {
			m.Logger.Warn("NotLeaderError", "topic", w.topic, "segment", r.Segment, "leader", r.Leader)
		}
		failAll(ops, &wire.NotLeaderError{Topic: w.topic, Segment: r.Segment, Leader: r.Leader})
		return
	}
	if w.fencedSeg == seg {
		failAll(ops, fmt.Errorf("topic %s segment %d: %w", w.topic, seg, wire.ErrFenced))
		return
	}
	if err := m.Disk.Check(); err != nil { // a *wire.DiskFullError, answered as is
		failAll(ops, err)
		return
	}
	id := engine.SegmentID{Topic: w.topic, Segment: seg}
	if w.stamp.seg != seg {
		w.stamp = m.stampFor(w.topic, seg)
	}
	// A replicated segment answers its ops once the ack quorum holds them;
	// a fenced one refuses before appending anything.
	rep, rerr := m.replicatorFor(w.topic, seg, true)
	if rerr == nil && rep != nil {
		rerr = rep.Refuse()
	}
	if rerr != nil {
		failAll(ops, rerr)
		return
	}
	for len(ops) > 0 {
		// Take ops while they fit the per-Append bounds (always at least one).
		n, entries, bytes, stamped := 0, 0, 0, false
		for n < len(ops) {
			op := ops[n]
			if n > 0 && (entries+len(op.entries) > wire.MaxAppendEntries || bytes+op.bytes > wire.MaxAppendBytes) {
				break
			}
			op.seg, op.first = seg, uint64(entries)
			stamped = stamped || op.stamped
			entries += len(op.entries)
			bytes += op.bytes
			n++
		}
		var all [][]byte
		if stamped {
			all = stampRun(ops[:n], entries, w.stamp.clock.Next(time.Now().UnixMilli()))
		} else if n == 1 {
			all = ops[0].entries
		} else {
			all = make([][]byte, 0, entries)
			for _, op := range ops[:n] {
				all = append(all, op.entries...)
			}
		}
		if w.stamp.timed && !stamped {
			all = record.EncodeBatch(all, w.stamp.clock.Next(time.Now().UnixMilli()))
		}
		first, err := m.Store.Append(context.Background(), id, all)
		if err == nil {
			for _, op := range ops[:n] {
				op.first += first
			}
			m.countedMu.Lock()
			m.counted[w.topic] = struct{}{}
			m.countedMu.Unlock()
			m.Metrics.ObserveAppend(w.topic, entries, bytes)
			if first+uint64(len(all)) >= m.cfg.MaxSegmentEntries && w.hintedSeg != seg {
				// Full: ask the monitor to roll now rather than at its next
				// tick, so segments stay close to MaxSegmentEntries.
				w.hintedSeg = seg
				m.Hint(w.topic)
			}
		} else {
			err = fmt.Errorf("append %s: %w", id, err)
		}
		if err == nil && rep != nil {
			acks := make([]replicate.Ack, n)
			for i, op := range ops[:n] {
				acks[i] = op
			}
			rep.Appended(first, all, acks)
		} else {
			failAll(ops[:n], err)
		}
		ops = ops[n:]
	}
}

// stampRun encodes a run of ops of which some carry their own records:
// those are stamped ts in place, the others wrapped as timed records.
func stampRun(ops []*writeOp, entries int, ts int64) [][]byte {
	all := make([][]byte, 0, entries)
	for _, op := range ops {
		if !op.stamped {
			all = append(all, record.EncodeBatch(op.entries, ts)...)
			continue
		}
		for _, e := range op.entries {
			_ = record.Stamp(e, ts) // checked by the caller
			all = append(all, e)
		}
	}
	return all
}

func (w *topicWriter) control(op *writeOp) writeResult {
	m := w.m
	id := engine.SegmentID{Topic: w.topic, Segment: op.seg}
	switch op.kind {
	case opFence:
		seg, ok := m.leaseFor(w.topic)
		if !ok || seg != op.seg {
			r, _ := m.FSM.Route(w.topic)
			return writeResult{err: &wire.NotLeaderError{Topic: w.topic, Segment: op.seg, Leader: r.Leader}}
		}
		count, err := m.count(context.Background(), id)
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
		if err := m.fences.Set(meta.Key{Topic: w.topic, Segment: op.seg}, true); err != nil {
			return writeResult{err: err}
		}
		w.fencedSeg = op.seg
		return writeResult{count: count, fenced: true}
	case opUnfence:
		if w.fencedSeg == op.seg {
			if err := m.fences.Set(meta.Key{Topic: w.topic, Segment: op.seg}, false); err != nil {
				return writeResult{err: err}
			}
			w.fencedSeg = 0
		}
		return writeResult{}
	case opSeal:
		if w.fencedSeg == op.seg {
			w.fencedSeg = 0
		}
		if err := m.fences.Set(meta.Key{Topic: w.topic, Segment: op.seg}, false); err != nil {
			m.Logger.Warn("lifting a rollover fence failed", "topic", w.topic, "segment", op.seg, "err", err)
		}
		if _, err := m.Store.Seal(context.Background(), id); err != nil && !errors.Is(err, engine.ErrNotFound) {
			// Sealing follows a lost lease; appends are refused anyway.
			m.Logger.Error("Lease sync failed", "topic", w.topic, "segment", op.seg, "err", err)
			m.Metrics.LeaseSyncFailures.Inc()
			return writeResult{err: fmt.Errorf("seal %s: %w", id, err)}
		}
		return writeResult{}
	}
	return writeResult{err: fmt.Errorf("writer: unknown op %d", op.kind)}
}

// Append appends entries to the topic's open segment led here; it returns
// once they are stored (and, for a replicated segment, held by the ack
// quorum).
func (m *Manager) Append(ctx context.Context, topic string, entries [][]byte) error {
	return m.submit(ctx, topic, &writeOp{kind: opAppend, entries: entries, bytes: record.Bytes(entries)}).err
}

// AppendRecords is Append of records the caller encoded (record.Version2 or 3,
// for a timed segment: the caller checks): the writer stamps their
// append time in place, so the caller must not touch them afterwards. It
// returns the segment and segment offset of the first one.
func (m *Manager) AppendRecords(ctx context.Context, topic string, records [][]byte) (seg, first uint64, err error) {
	res := m.submit(ctx, topic, &writeOp{kind: opAppend, entries: records, bytes: record.Bytes(records), stamped: true})
	return res.seg, res.first, res.err
}

// AppendAsync queues entries for the topic's writer without blocking; cb
// gets the result. It returns false when the queue is full (the caller
// falls back to the blocking path).
func (m *Manager) AppendAsync(topic string, entries [][]byte, cb func(error)) bool {
	w, err := m.writer(topic)
	if err != nil {
		cb(err)
		return true
	}
	defer m.release(w)
	op := &writeOp{kind: opAppend, entries: entries, bytes: record.Bytes(entries), cb: func(r writeResult) { cb(r.err) }}
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

// Fence fences seg, led here, if it holds >= min entries and returns its
// count: every append queued before the fence is in it, none after. A
// replicated segment is sealed only at a count its ack quorum holds, so
// every entry below the sealed count stays readable if this node dies
// right after the rollover.
func (m *Manager) Fence(ctx context.Context, topic string, seg, min uint64) (uint64, bool, error) {
	r := m.submit(ctx, topic, &writeOp{kind: opFence, seg: seg, min: min})
	if r.err == nil && r.fenced {
		c, err := m.Confirmed(ctx, topic, seg, r.count)
		if err != nil {
			return 0, false, err
		}
		r.count = c
	}
	return r.count, r.fenced, r.err
}

// Unfence lifts a fence whose rollover was rejected.
func (m *Manager) Unfence(ctx context.Context, topic string, seg uint64) error {
	err := m.submit(ctx, topic, &writeOp{kind: opUnfence, seg: seg}).err
	if err == nil {
		if r := m.replicator(topic, seg); r != nil {
			r.Uncap()
		}
	}
	return err
}

// enqueueSeal asks the topic's writer to seal seg in the store without
// waiting: it is defensive (appends to a segment whose lease is gone are
// refused anyway), so a full queue just skips it.
func (m *Manager) enqueueSeal(topic string, seg uint64) {
	w, err := m.writer(topic)
	if err != nil {
		return
	}
	defer m.release(w)
	select {
	case w.ops <- &writeOp{kind: opSeal, seg: seg, done: make(chan writeResult, 1)}:
	default:
	}
}
