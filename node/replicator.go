package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/rpc"
)

// Leader side of segment replication: one replicator per replicated open
// segment led here. The topic writer appends a batch to the local store
// and hands it to the replicator (appended); one sender goroutine per
// follower streams the segment's entries in order, several batches in
// flight, reading them back from the local store (so a follower that fell
// behind or reconnected resumes from its own count). A batch's ops are
// answered once ack quorum members (the leader included) hold its last
// entry. A replicator keeps streaming after the segment is sealed by a
// rollover until every follower holds the sealed count.
const (
	replMaxInflight   = 8       // batches in flight per follower
	replMaxEntries    = 4096    // entries per replica append
	replMaxBytes      = 1 << 20 // payload bytes per replica append
	replCallTimeout   = 5 * time.Second
	replProbeBackoff  = 100 * time.Millisecond
	replLingerSealed  = 30 * time.Second // streaming to a lagging follower after the seal
	replSweepInterval = 100 * time.Millisecond
)

// Error codes of the replica methods (rpc.Error.Code).
const (
	codeReplicaFenced uint8 = 32
	codeReplicaGap    uint8 = 33
)

func replicaToRPC(err error) error {
	var gap *replicaGapError
	switch {
	case errors.Is(err, errReplicaFenced):
		return &rpc.Error{Code: codeReplicaFenced, Message: err.Error()}
	case errors.As(err, &gap):
		return &rpc.Error{Code: codeReplicaGap, Message: err.Error()}
	}
	return toRPC(err)
}

func isReplicaFenced(err error) bool {
	var re *rpc.Error
	if errors.As(err, &re) && re.Code == codeReplicaFenced {
		return true
	}
	return errors.Is(err, errReplicaFenced)
}

type recentBatch struct {
	first   uint64
	entries [][]byte
	bytes   int
}

// Bounds of the in-memory batches kept for the senders.
const (
	replRecentMaxBytes   = 64 << 20
	replRecentMaxBatches = 4096
)

type pendingAck struct {
	end      uint64
	ops      []*writeOp
	deadline time.Time
}

type follower struct {
	id        uint64
	acked     uint64 // entries the follower confirmed holding
	sent      uint64 // next offset to send
	inflight  int
	gen       uint64 // bumped at every resync; stale callbacks are ignored
	needProbe bool
	fenced    bool
	known     bool // a probe answered at least once
}

type replicator struct {
	n     *Node
	key   segKey
	id    engine.SegmentID
	epoch uint64
	ack   int

	mu        sync.Mutex
	cond      *sync.Cond
	followers []*follower
	local     uint64 // entries in the local store
	lac       uint64 // entries held by ack quorum members (last add confirmed)
	pending   []pendingAck
	fenced    bool // a follower saw a higher epoch: recovery is under way
	stopped   bool
	sealedAt  time.Time
	// probed counts followers whose count is known; ready is closed once
	// enough are known for the last add confirmed to be meaningful (a
	// restarted leader learns it from its followers).
	probed    int
	ready     chan struct{}
	readyDone bool
	// recent holds the batches appended lately, oldest first, so senders
	// stream them without reading the store back.
	recent      []recentBatch
	recentBytes int
	// limited freezes lac at ackLimit (see capAtConfirmed).
	limited  bool
	ackLimit uint64

	// ctx is cancelled when the replicator stops (aborts probes in flight).
	ctx    context.Context
	cancel context.CancelFunc

	wg sync.WaitGroup
}

// pendingTimeout bounds how long an appended batch waits for its quorum.
func (n *Node) pendingTimeout() time.Duration {
	return max(2*n.cfg.FailureTimeout, 2*time.Second)
}

// replicatorFor returns the replicator of an open segment this node leads,
// creating it when the segment has more than one replica. It returns nil
// for unreplicated segments.
func (n *Node) replicatorFor(topic string, seg uint64) (*replicator, error) {
	k := segKey{topic, seg}
	s := &n.repl
	s.repMu.Lock()
	defer s.repMu.Unlock()
	if r, ok := s.reps[k]; ok {
		return r, nil
	}
	if s.unreplicated[k] {
		return nil, nil
	}
	t, ok := n.fsm.Topic(topic)
	if !ok {
		return nil, nil
	}
	set := t.SegmentReplicas(seg)
	if len(set) <= 1 || set[0] != n.id {
		// A segment's set never changes while it is open: remember.
		if s.unreplicated == nil {
			s.unreplicated = map[segKey]bool{}
		}
		s.unreplicated[k] = true
		return nil, nil
	}
	if _, sealed := t.SealedSegments[seg]; sealed {
		return nil, nil
	}
	epoch, err := n.replicaEpoch(k)
	if err != nil {
		return nil, err
	}
	if epoch > 1 {
		// Fenced here by a recovery: this node must not lead it again.
		return nil, fmt.Errorf("topic %s segment %d: fenced at epoch %d: %w", topic, seg, epoch, ErrFenced)
	}
	local, err := n.segmentCount(engine.SegmentID{Topic: topic, Segment: seg})
	if err != nil {
		return nil, err
	}
	r := &replicator{
		n:     n,
		key:   k,
		id:    engine.SegmentID{Topic: topic, Segment: seg},
		epoch: 1,
		ack:   t.SegmentAckQuorum(seg),
		local: local,
	}
	r.cond = sync.NewCond(&r.mu)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.ready = make(chan struct{})
	for _, id := range set[1:] {
		r.followers = append(r.followers, &follower{id: id, needProbe: true})
	}
	if r.ack <= 1 {
		r.lac = local
		r.markReadyLocked()
	}
	if s.reps == nil {
		s.reps = map[segKey]*replicator{}
	}
	s.reps[k] = r
	if s.closed {
		// No goroutines once the replicators were stopped.
		r.stopped = true
		r.cancel()
		return r, nil
	}
	for _, f := range r.followers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.runFollower(f)
		}()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.sweep()
	}()
	n.logger.Info("replicating segment", "topic", topic, "segment", seg, "replicas", set, "ack_quorum", r.ack, "entries", local)
	return r, nil
}

// stopReplicatorFenced marks the replicator of k fenced (this node was
// fenced by a recovery) and forgets it: pending batches fail as unacked.
func (n *Node) stopReplicatorFenced(k segKey) {
	s := &n.repl
	s.repMu.Lock()
	r := s.reps[k]
	delete(s.reps, k)
	s.repMu.Unlock()
	if r != nil {
		r.fail(true)
	}
}

// stopReplicators stops every replicator (shutdown); pending batches fail.
func (n *Node) stopReplicators() {
	s := &n.repl
	s.repMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stopCh())
	}
	reps := make([]*replicator, 0, len(s.reps))
	for _, r := range s.reps {
		reps = append(reps, r)
	}
	s.reps = nil
	s.repMu.Unlock()
	for _, r := range reps {
		r.fail(false)
		r.wg.Wait()
	}
}

func (n *Node) dropReplicator(r *replicator) {
	s := &n.repl
	s.repMu.Lock()
	if s.reps[r.key] == r {
		delete(s.reps, r.key)
	}
	s.repMu.Unlock()
}

// readLimit bounds reads of an open replicated segment led here to its
// last add confirmed, so a reader never sees an entry a failover could
// drop. ok is false when no bound applies.
func (n *Node) readLimit(topic string, seg uint64) (uint64, bool) {
	if _, _, sealed, _ := n.fsm.SegmentInfo(topic, seg); sealed {
		return 0, false
	}
	r, _ := n.fsm.Route(topic)
	if r.Segment != seg || r.Leader != n.id {
		return 0, false
	}
	rep, err := n.replicatorFor(topic, seg)
	if err != nil {
		return 0, true // fenced: nothing is confirmed from here
	}
	if rep == nil {
		return 0, false
	}
	t := time.NewTimer(replReadyWait)
	defer t.Stop()
	select {
	case <-rep.ready:
	case <-t.C:
	}
	rep.mu.Lock()
	defer rep.mu.Unlock()
	return rep.lac, true
}

func (r *replicator) markReadyLocked() {
	if !r.readyDone {
		r.readyDone = true
		close(r.ready)
	}
}

// replReadyWait bounds how long a read of an open segment waits for a
// fresh replicator to learn its followers' counts.
const replReadyWait = 3 * time.Second

// refuse reports why new appends must not be made (nil = go ahead).
func (r *replicator) refuse() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fenced || r.stopped {
		return fmt.Errorf("topic %s segment %d: %w", r.key.topic, r.key.seg, ErrFenced)
	}
	return nil
}

// appended records a batch stored locally at [first, first+count) whose
// ops wait for the quorum.
func (r *replicator) appended(first uint64, entries [][]byte, ops []*writeOp) {
	count := uint64(len(entries))
	r.mu.Lock()
	if r.stopped || r.fenced {
		r.mu.Unlock()
		for _, op := range ops {
			op.finish(writeResult{err: fmt.Errorf("topic %s segment %d: %w", r.key.topic, r.key.seg, errUnacked)})
		}
		return
	}
	if end := first + count; end > r.local {
		r.local = end
	}
	b := 0
	for _, e := range entries {
		b += len(e)
	}
	r.recent = append(r.recent, recentBatch{first: first, entries: entries, bytes: b})
	r.recentBytes += b
	r.trimRecentLocked()
	r.pending = append(r.pending, pendingAck{end: first + count, ops: ops, deadline: time.Now().Add(r.n.pendingTimeout())})
	done := r.advanceLocked()
	r.cond.Broadcast()
	r.mu.Unlock()
	finishOps(done, nil)
}

func finishOps(done []pendingAck, err error) {
	for _, p := range done {
		for _, op := range p.ops {
			op.finish(writeResult{err: err})
		}
	}
}

// advanceLocked recomputes the last add confirmed and pops the batches it
// covers.
func (r *replicator) advanceLocked() []pendingAck {
	counts := make([]uint64, 0, len(r.followers)+1)
	counts = append(counts, r.local)
	for _, f := range r.followers {
		counts = append(counts, min(f.acked, r.local))
	}
	slices.SortFunc(counts, func(a, b uint64) int { return cmp.Compare(b, a) })
	q := counts[min(r.ack, len(counts))-1]
	if r.limited {
		q = min(q, r.ackLimit)
	}
	if q > r.lac {
		r.lac = q
	}
	k := 0
	for k < len(r.pending) && r.pending[k].end <= r.lac {
		k++
	}
	if k == 0 {
		return nil
	}
	done := slices.Clone(r.pending[:k])
	r.pending = slices.Delete(r.pending, 0, k)
	return done
}

// fail stops the replicator and fails every pending batch as unacked.
func (r *replicator) fail(fenced bool) {
	r.cancel()
	r.mu.Lock()
	if fenced {
		r.fenced = true
	}
	r.stopped = true
	done := r.pending
	r.pending = nil
	r.cond.Broadcast()
	r.mu.Unlock()
	finishOps(done, fmt.Errorf("topic %s segment %d: %w", r.key.topic, r.key.seg, errUnacked))
}

// sweep expires batches that waited too long for their quorum and ends
// the replicator once the segment is sealed and every follower holds it
// (or after replLingerSealed).
func (r *replicator) sweep() {
	t := time.NewTicker(replSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.n.repl.stopCh():
			r.fail(false)
			r.n.dropReplicator(r)
			return
		}
		now := time.Now()
		_, sealedCount, sealed, _ := r.n.fsm.SegmentInfo(r.key.topic, r.key.seg)
		r.mu.Lock()
		if r.stopped {
			r.mu.Unlock()
			r.n.dropReplicator(r)
			return
		}
		var expired []pendingAck
		for len(r.pending) > 0 && now.After(r.pending[0].deadline) {
			expired = append(expired, r.pending[0])
			r.pending = r.pending[1:]
		}
		finished := false
		if sealed {
			if r.sealedAt.IsZero() {
				r.sealedAt = now
			}
			all := true
			for _, f := range r.followers {
				if !f.fenced && f.acked < sealedCount {
					all = false
				}
			}
			finished = all || now.Sub(r.sealedAt) > replLingerSealed
		}
		r.mu.Unlock()
		if len(expired) > 0 {
			r.n.logger.Warn("replicated append not acknowledged by the ack quorum in time", "topic", r.key.topic, "segment", r.key.seg, "batches", len(expired))
			finishOps(expired, fmt.Errorf("topic %s segment %d: %w", r.key.topic, r.key.seg, errUnacked))
		}
		if finished {
			r.fail(false)
			r.n.dropReplicator(r)
			return
		}
	}
}

// runFollower streams the segment to one follower.
func (r *replicator) runFollower(f *follower) {
	ctx := r.ctx
	for {
		r.mu.Lock()
		for !r.stopped && !f.fenced && ((f.needProbe && f.inflight > 0) || (!f.needProbe && (f.sent >= r.local || f.inflight >= replMaxInflight))) {
			r.cond.Wait()
		}
		if r.stopped || f.fenced {
			r.mu.Unlock()
			return
		}
		if f.needProbe {
			r.mu.Unlock()
			count, err := r.send(ctx, f.id, 0, nil)
			r.mu.Lock()
			switch {
			case err == nil && count > r.local:
				// The follower holds entries this leader lost (a crash
				// without fsync): continuing would fork the segment.
				r.n.logger.Error("replica holds more entries than its segment leader; not streaming to it", "topic", r.key.topic, "segment", r.key.seg, "replica", f.id, "replica_entries", count, "leader_entries", r.local)
				f.fenced = true
			case err == nil:
				if !f.known {
					f.known = true
					r.probed++
					if r.probed >= r.ack-1 {
						r.markReadyLocked()
					}
				}
				f.sent, f.needProbe = count, false
				f.acked = max(f.acked, count)
				done := r.advanceLocked()
				r.mu.Unlock()
				finishOps(done, nil)
				continue
			case isReplicaFenced(err):
				lost := r.fencedByFollowerLocked(f)
				r.mu.Unlock()
				finishOps(lost, r.errUnacked())
				continue
			}
			r.mu.Unlock()
			if err != nil && !r.sleep(replProbeBackoff) {
				return
			}
			continue
		}
		from, gen := f.sent, f.gen
		want := min(r.local-from, replMaxEntries)
		f.inflight++
		if entries := r.recentLocked(from, int(want)); entries != nil {
			// Fast path: the batches are still in memory.
			f.sent = from + uint64(len(entries))
			r.trimRecentLocked()
			r.mu.Unlock()
			r.sendAsync(f, gen, from, entries)
			continue
		}
		r.mu.Unlock()
		entries, err := r.n.store.Read(ctx, r.id, from, int(want), replMaxBytes)
		r.mu.Lock()
		if err != nil || len(entries) == 0 || f.gen != gen {
			f.inflight--
			if f.gen == gen {
				f.gen++
				f.needProbe = true
			}
			r.mu.Unlock()
			if err != nil {
				r.n.logger.Error("replication: local read failed", "topic", r.key.topic, "segment", r.key.seg, "err", err)
				if !r.sleep(replProbeBackoff) {
					return
				}
			}
			continue
		}
		end := from + uint64(len(entries))
		f.sent = end
		r.trimRecentLocked()
		r.mu.Unlock()
		r.sendAsync(f, gen, from, entries)
	}
}

// recentLocked returns up to max entries starting at offset from out of
// the in-memory batches (within replMaxBytes), or nil when from is not
// covered by them.
func (r *replicator) recentLocked(from uint64, max int) [][]byte {
	k := -1
	for i, b := range r.recent {
		if from >= b.first && from < b.first+uint64(len(b.entries)) {
			k = i
			break
		}
	}
	if k < 0 {
		return nil
	}
	var out [][]byte
	bytes := 0
	next := from
	for _, b := range r.recent[k:] {
		if b.first != next && len(out) > 0 {
			break
		}
		for _, e := range b.entries[next-b.first:] {
			if len(out) >= max || (len(out) > 0 && bytes+len(e) > replMaxBytes) {
				return out
			}
			out = append(out, e)
			bytes += len(e)
		}
		next = b.first + uint64(len(b.entries))
	}
	return out
}

// trimRecentLocked drops in-memory batches every follower has been sent
// (a resend after a failure reads the store) and bounds the rest.
func (r *replicator) trimRecentLocked() {
	low := r.local
	for _, f := range r.followers {
		if !f.fenced && f.sent < low {
			low = f.sent
		}
	}
	k := 0
	for k < len(r.recent) {
		b := r.recent[k]
		end := b.first + uint64(len(b.entries))
		if end > low && r.recentBytes <= replRecentMaxBytes && len(r.recent)-k <= replRecentMaxBatches {
			break
		}
		r.recentBytes -= b.bytes
		k++
	}
	if k > 0 {
		clear(r.recent[:k])
		r.recent = r.recent[k:]
	}
}

func (r *replicator) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.n.repl.stopCh():
		return false
	}
}

// fencedByFollowerLocked handles a follower that was fenced by a recovery:
// nothing pending can be confirmed any more.
func (r *replicator) fencedByFollowerLocked(f *follower) []pendingAck {
	f.fenced = true
	if !r.fenced {
		r.fenced = true
		r.n.logger.Warn("segment fenced by a recovery: no longer acknowledging appends", "topic", r.key.topic, "segment", r.key.seg, "replica", f.id)
	}
	done := r.pending
	r.pending = nil
	r.cond.Broadcast()
	return done
}

func (r *replicator) errUnacked() error {
	return fmt.Errorf("topic %s segment %d: %w", r.key.topic, r.key.seg, errUnacked)
}

// send is a blocking replica append (entries may be empty: a probe).
func (r *replicator) send(ctx context.Context, id uint64, first uint64, entries [][]byte) (uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, replCallTimeout)
	defer cancel()
	return r.n.appendReplica(cctx, id, r.key.topic, r.key.seg, r.epoch, first, entries)
}

func (r *replicator) sendAsync(f *follower, gen, first uint64, entries [][]byte) {
	cb := func(resp []byte, err error) {
		var count uint64
		if err == nil {
			d := dec{b: resp}
			count = d.u64()
			err = d.done()
		}
		r.mu.Lock()
		f.inflight--
		var done, lost []pendingAck
		switch {
		case err == nil:
			if count > f.acked && count <= r.local {
				f.acked = count
			}
			done = r.advanceLocked()
		case isReplicaFenced(err):
			lost = r.fencedByFollowerLocked(f)
		case f.gen == gen:
			f.gen++
			f.needProbe = true
		}
		r.cond.Broadcast()
		r.mu.Unlock()
		finishOps(done, nil)
		finishOps(lost, r.errUnacked())
	}
	addr, err := r.n.nodeAddr(f.id)
	if err != nil {
		cb(nil, err)
		return
	}
	r.n.pool.Go(context.Background(), addr, methodReplicaAppend, encodeReplicaAppend(r.key.topic, r.key.seg, r.epoch, first, entries), replCallTimeout, cb)
}

// awaitReplicated waits (bounded by ctx) until every follower of a
// replicated segment led here that is still streaming holds count entries.
func (n *Node) awaitReplicated(ctx context.Context, topic string, seg, count uint64) {
	n.repl.repMu.Lock()
	r := n.repl.reps[segKey{topic, seg}]
	n.repl.repMu.Unlock()
	if r == nil {
		return
	}
	// Bounded on its own: a dead follower must not use up the caller's
	// whole budget (the seal then uses confirmedCount).
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		r.mu.Lock()
		all := true
		for _, f := range r.followers {
			if !f.fenced && f.acked < count {
				all = false
			}
		}
		stopped := r.stopped
		r.mu.Unlock()
		if all || stopped {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// replConfirmWait bounds how long a seal waits for the ack quorum to hold
// the leader's count before sealing at what the quorum holds instead.
const replConfirmWait = 3 * time.Second

// confirmedCount returns the count at which a replicated segment led here
// may be sealed: count once its ack quorum holds count entries, or, when
// the quorum does not get there within replConfirmWait (followers down),
// the last add confirmed — the batches past it then fail as unacked and
// can never be acknowledged later, so nothing acknowledged lies past the
// seal and nothing past it (held by this node alone) becomes readable.
// An unreplicated segment returns count.
func (n *Node) confirmedCount(ctx context.Context, topic string, seg, count uint64) (uint64, error) {
	r, err := n.replicatorFor(topic, seg)
	if err != nil {
		return 0, err
	}
	if r == nil {
		return count, nil
	}
	wctx, cancel := context.WithTimeout(ctx, replConfirmWait)
	defer cancel()
	select {
	case <-r.ready:
	case <-wctx.Done():
	}
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		r.mu.Lock()
		lac, fenced, limited, limit := r.lac, r.fenced, r.limited, r.ackLimit
		r.mu.Unlock()
		switch {
		case fenced:
			return 0, fmt.Errorf("topic %s segment %d: %w", topic, seg, ErrFenced)
		case limited:
			return min(count, limit), nil
		case lac >= count:
			return count, nil
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return 0, fmt.Errorf("topic %s segment %d: waiting for the ack quorum: %w", topic, seg, ctx.Err())
			}
			c := r.capAtConfirmed()
			n.logger.Warn("ack quorum does not hold the whole segment: sealing at the confirmed count", "topic", topic, "segment", seg, "entries", count, "confirmed", c)
			return c, nil
		case <-t.C:
		}
	}
}

// capAtConfirmed freezes the last add confirmed: batches past it fail as
// unacked and no later acknowledgement can move it.
func (r *replicator) capAtConfirmed() uint64 {
	r.mu.Lock()
	if !r.limited {
		r.limited = true
		r.ackLimit = r.lac
	}
	limit := r.ackLimit
	var lost []pendingAck
	k := len(r.pending)
	for k > 0 && r.pending[k-1].end > limit {
		k--
	}
	lost = slices.Clone(r.pending[k:])
	r.pending = r.pending[:k]
	r.mu.Unlock()
	finishOps(lost, r.errUnacked())
	return limit
}

// uncap lifts capAtConfirmed after the seal was abandoned (unfence).
func (n *Node) uncap(topic string, seg uint64) {
	n.repl.repMu.Lock()
	r := n.repl.reps[segKey{topic, seg}]
	n.repl.repMu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	r.limited = false
	done := r.advanceLocked()
	r.mu.Unlock()
	finishOps(done, nil)
}

// awaitPendingAcks waits (at most 2 s, bounded by ctx) until no replicator
// of this node has batches waiting for their ack quorum, so a clean
// shutdown answers them instead of failing them as unacked.
func (n *Node) awaitPendingAcks(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		n.repl.repMu.Lock()
		reps := make([]*replicator, 0, len(n.repl.reps))
		for _, r := range n.repl.reps {
			reps = append(reps, r)
		}
		n.repl.repMu.Unlock()
		pending := 0
		for _, r := range reps {
			r.mu.Lock()
			pending += len(r.pending)
			r.mu.Unlock()
		}
		if pending == 0 {
			return
		}
		select {
		case <-ctx.Done():
			n.logger.Warn("shutdown: replicated appends still wait for their ack quorum", "batches", pending)
			return
		case <-t.C:
		}
	}
}
