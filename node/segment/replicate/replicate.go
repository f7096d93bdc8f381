// Package replicate is the leader side of segment replication: one
// Replicator per replicated open segment led by this node. The topic
// writer appends a batch to the local store and hands it over (Appended);
// one sender goroutine per follower streams the segment's entries in
// order, several batches in flight, from memory or read back from the
// local store (so a follower that fell behind or reconnected resumes from
// its own count). A batch is acknowledged once ack-quorum members (the
// leader included) hold its last entry. A replicator keeps streaming
// after the segment is sealed by a rollover until every follower holds
// the sealed count.
//
// It is owned by package segment, which creates replicators and is the
// only importer.
//
// Lock order: Replicator.mu is a leaf; no call out of the package is made
// while holding it except the Ack callbacks' channel sends, which never
// block (buffered or asynchronous).
package replicate

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/placement"
	"github.com/walrus-go/walrus/node/wire"
)

// Bounds of streaming.
const (
	MaxEntries      = 4096    // entries per replica append
	MaxBytes        = 1 << 20 // payload bytes per replica append
	maxInflight     = 8       // batches in flight per follower
	probeBackoff    = 100 * time.Millisecond
	lingerSealed    = 30 * time.Second // streaming to a lagging follower after the seal
	sweepInterval   = 100 * time.Millisecond
	callTimeout     = 5 * time.Second
	recentMaxBytes  = 64 << 20 // in-memory batches kept for the senders
	recentMaxBatchs = 4096
	// ReadyWait bounds how long a read of an open segment waits for a
	// fresh replicator to learn its followers' counts.
	ReadyWait = 3 * time.Second
	// ConfirmWait bounds how long a seal waits for the ack quorum to hold
	// the leader's count before sealing at what the quorum holds instead.
	ConfirmWait = 3 * time.Second
)

// Budget bounds the memory all replicators of a node keep for their
// senders; past it, senders read the batches back from the local store.
type Budget struct {
	Limit int64
	used  atomic.Int64
}

// take reserves n bytes if they fit.
func (b *Budget) take(n int) bool {
	if b == nil {
		return true
	}
	if b.used.Add(int64(n)) > b.Limit {
		b.used.Add(-int64(n))
		return false
	}
	return true
}

func (b *Budget) give(n int) {
	if b != nil {
		b.used.Add(-int64(n))
	}
}

// Used is the bytes held now.
func (b *Budget) Used() int64 { return b.used.Load() }

// Ack receives the outcome of one appended batch's op.
type Ack interface{ Ack(err error) }

// Follower is one follower's side of the replica protocol (a wire.Client).
type Follower interface {
	ReplicaAppend(ctx context.Context, topic string, seg, epoch, first uint64, entries [][]byte) (uint64, error)
	ReplicaAppendAsync(topic string, seg, epoch, first uint64, entries [][]byte, cb func(uint64, error))
}

// Reader reads the local copy of the segment.
type Reader interface {
	Read(ctx context.Context, id engine.SegmentID, from uint64, maxEntries, maxBytes int) ([][]byte, error)
}

// Config is what a replicator is built from.
type Config struct {
	ID        engine.SegmentID
	Followers []uint64
	AckQuorum int
	// Local is the number of entries the local store holds now.
	Local uint64
	// Confirmed is a count the ack quorum is known to hold already (an
	// earlier replicator of the segment confirmed it before it retired):
	// the readable bound starts there, never lower.
	Confirmed uint64
	// PendingTimeout bounds how long a batch waits for its quorum.
	PendingTimeout time.Duration
	Peer           func(id uint64) Follower
	Store          Reader
	// Sealed reports the segment's sealed count from the metadata.
	Sealed func() (count uint64, sealed bool)
	// Stop is closed when every replicator must stop (shutdown).
	Stop <-chan struct{}
	// Done is called once when the replicator has stopped by itself.
	Done func()
	// Inherited: this leader may have lost entries of the segment (it
	// restarted since the segment opened), so before its first append it
	// hears from enough followers to find out.
	Inherited bool
	// Memory is the node-wide bound on in-memory batches (nil: none but
	// the per-segment one).
	Memory *Budget
	// Deposed is called (on its own goroutine) when this leader must give
	// the segment up: a follower holds more entries than it does, or a
	// recovery fenced a follower.
	Deposed func()
	Logger  *slog.Logger
}

type recentBatch struct {
	first   uint64
	entries [][]byte
	bytes   int
}

type pendingAck struct {
	end      uint64
	acks     []Ack
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
	// peer is the follower's stub, resolved again at every probe (its
	// address may have changed), so a send does not look it up.
	peer     Follower
	failures int // sends failed in a row (backoff before the next probe)
}

// Replicator streams one open segment to its followers.
type Replicator struct {
	cfg   Config
	epoch uint64

	mu        sync.Mutex
	cond      *sync.Cond // wakes the senders
	changed   chan struct{}
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
	recent    []recentBatch
	recentB   int
	// limited freezes lac at ackLimit (see CapAtConfirmed).
	limited  bool
	ackLimit uint64

	ctx    context.Context // cancelled when the replicator stops
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds a replicator; Start launches its goroutines.
func New(cfg Config) *Replicator {
	r := &Replicator{cfg: cfg, epoch: 1, local: cfg.Local, ready: make(chan struct{})}
	r.cond = sync.NewCond(&r.mu)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for _, id := range cfg.Followers {
		r.followers = append(r.followers, &follower{id: id, needProbe: true})
	}
	if cfg.AckQuorum <= 1 {
		r.lac = cfg.Local
		r.markReadyLocked()
	} else {
		r.lac = min(cfg.Confirmed, cfg.Local)
	}
	return r
}

// Start launches one sender per follower and the sweeper.
func (r *Replicator) Start() {
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
}

// Wait waits for the goroutines after Fail.
func (r *Replicator) Wait() { r.wg.Wait() }

func (r *Replicator) markReadyLocked() {
	if !r.readyDone {
		r.readyDone = true
		close(r.ready)
	}
}

// changeLocked returns a channel closed at the next state change. It is
// made only when someone waits, so the append path allocates none.
func (r *Replicator) changeLocked() <-chan struct{} {
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.changed
}

// changedLocked wakes everyone waiting for a state change.
func (r *Replicator) changedLocked() {
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	r.cond.Broadcast()
}

func (r *Replicator) errUnacked() error {
	return fmt.Errorf("topic %s segment %d: %w", r.cfg.ID.Topic, r.cfg.ID.Segment, wire.ErrUnacked)
}

// Refuse reports why new appends must not be made (nil = go ahead).
//
// The first append waits (at most ReadyWait) until enough followers have
// reported their counts that one of them holds every acknowledged entry
// (see startQuorum): a leader that lost entries (a wiped disk) must learn
// it before it writes anything, or its new entries would fork the segment.
func (r *Replicator) Refuse() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	deadline := time.Now().Add(ReadyWait)
	for !r.fenced && !r.stopped && r.probed < r.startQuorum() {
		changed := r.changeLocked()
		r.mu.Unlock()
		wait := time.Until(deadline)
		if wait <= 0 {
			r.mu.Lock()
			return fmt.Errorf("topic %s segment %d: waiting for the replicas to report their counts: %w", r.cfg.ID.Topic, r.cfg.ID.Segment, wire.ErrFenced)
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		}
		t.Stop()
		r.mu.Lock()
	}
	if r.fenced || r.stopped {
		return fmt.Errorf("topic %s segment %d: %w", r.cfg.ID.Topic, r.cfg.ID.Segment, wire.ErrFenced)
	}
	return nil
}

// startQuorum is how many followers must have reported their counts
// before this leader appends: every acknowledged entry is on ack replicas,
// so on at least ack-1 followers, and any len(set)-ack+1 followers include
// one of them (placement.RecoveryQuorum).
// A segment opened while this process ran needs no wait: everything ever
// appended to it went through this process.
func (r *Replicator) startQuorum() int {
	if !r.cfg.Inherited {
		return 0
	}
	return min(len(r.followers), placement.RecoveryQuorum(len(r.followers)+1, r.cfg.AckQuorum))
}

// ReadLimit is the last add confirmed, once the followers' counts are
// known (or after ReadyWait): reads of the open segment stop there.
func (r *Replicator) ReadLimit() uint64 {
	t := time.NewTimer(ReadyWait)
	defer t.Stop()
	select {
	case <-r.ready:
	case <-t.C:
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lac
}

// Appended records a batch stored locally at [first, first+len) whose
// acks wait for the quorum.
func (r *Replicator) Appended(first uint64, entries [][]byte, acks []Ack) {
	count := uint64(len(entries))
	r.mu.Lock()
	if r.stopped || r.fenced {
		r.mu.Unlock()
		for _, a := range acks {
			a.Ack(r.errUnacked())
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
	if r.cfg.Memory.take(b) {
		r.recent = append(r.recent, recentBatch{first: first, entries: entries, bytes: b})
		r.recentB += b
	}
	r.trimRecentLocked()
	r.pending = append(r.pending, pendingAck{end: first + count, acks: acks, deadline: time.Now().Add(r.cfg.PendingTimeout)})
	done := r.advanceLocked()
	r.changedLocked()
	r.mu.Unlock()
	finish(done, nil)
}

func finish(done []pendingAck, err error) {
	for _, p := range done {
		for _, a := range p.acks {
			a.Ack(err)
		}
	}
}

// advanceLocked recomputes the last add confirmed and pops the batches it
// covers.
func (r *Replicator) advanceLocked() []pendingAck {
	counts := make([]uint64, 0, len(r.followers)+1)
	counts = append(counts, r.local)
	for _, f := range r.followers {
		counts = append(counts, min(f.acked, r.local))
	}
	q := placement.Confirmed(counts, r.cfg.AckQuorum)
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

// Fail stops the replicator and fails every pending batch as unacked;
// fenced records that a recovery fenced this node.
func (r *Replicator) Fail(fenced bool) {
	r.cancel()
	r.mu.Lock()
	if fenced {
		r.fenced = true
	}
	r.stopped = true
	done := r.pending
	r.pending = nil
	r.cfg.Memory.give(r.recentB)
	clear(r.recent)
	r.recent, r.recentB = nil, 0
	r.changedLocked()
	r.mu.Unlock()
	finish(done, r.errUnacked())
}

// sweep expires batches that waited too long for their quorum and ends
// the replicator once the segment is sealed and every follower holds it
// (or after lingerSealed).
func (r *Replicator) sweep() {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.cfg.Stop:
			r.Fail(false)
			r.cfg.Done()
			return
		}
		now := time.Now()
		sealedCount, sealed := r.cfg.Sealed()
		r.mu.Lock()
		if r.stopped {
			r.mu.Unlock()
			r.cfg.Done()
			return
		}
		var expired []pendingAck
		for len(r.pending) > 0 && now.After(r.pending[0].deadline) {
			expired = append(expired, r.pending[0])
			r.pending = r.pending[1:]
		}
		if len(expired) > 0 {
			r.changedLocked()
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
			finished = all || now.Sub(r.sealedAt) > lingerSealed
		}
		r.mu.Unlock()
		if len(expired) > 0 {
			r.cfg.Logger.Warn("replicated append not acknowledged by the ack quorum in time", "topic", r.cfg.ID.Topic, "segment", r.cfg.ID.Segment, "batches", len(expired))
			finish(expired, r.errUnacked())
		}
		if finished {
			r.Fail(false)
			r.cfg.Done()
			return
		}
	}
}

// Idle reports a replicator with nothing to do: every streaming follower
// holds every local entry, no append waits for its quorum, and nothing
// (a fence, a cap) is in progress. Such a replicator may be retired and
// a new one made on the next append, seeded with LAC.
func (r *Replicator) Idle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || r.fenced || r.limited || !r.readyDone || len(r.pending) > 0 || r.lac < r.local {
		return false
	}
	for _, f := range r.followers {
		if !f.fenced && f.acked < r.local {
			return false
		}
	}
	return true
}

// LAC is the count the ack quorum holds (last add confirmed).
func (r *Replicator) LAC() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lac
}

// AwaitFollowers waits (bounded by ctx and 2 s) until every follower that
// is still streaming holds count entries.
func (r *Replicator) AwaitFollowers(ctx context.Context, count uint64) {
	// Bounded on its own: a dead follower must not use up the caller's
	// whole budget (the seal then uses Confirmed).
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for {
		r.mu.Lock()
		all := true
		for _, f := range r.followers {
			if !f.fenced && f.acked < count {
				all = false
			}
		}
		stopped, changed := r.stopped, r.changeLocked()
		r.mu.Unlock()
		if all || stopped {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// Confirmed returns the count at which the segment may be sealed: count
// once its ack quorum holds count entries, or, when the quorum does not
// get there within ConfirmWait (followers down), the last add confirmed —
// the batches past it then fail as unacked and can never be acknowledged
// later, so nothing acknowledged lies past the seal and nothing past it
// (held by this node alone) becomes readable.
func (r *Replicator) Confirmed(ctx context.Context, count uint64) (uint64, error) {
	wctx, cancel := context.WithTimeout(ctx, ConfirmWait)
	defer cancel()
	select {
	case <-r.ready:
	case <-wctx.Done():
	}
	for {
		r.mu.Lock()
		lac, fenced, limited, limit, changed := r.lac, r.fenced, r.limited, r.ackLimit, r.changeLocked()
		r.mu.Unlock()
		switch {
		case fenced:
			return 0, fmt.Errorf("topic %s segment %d: %w", r.cfg.ID.Topic, r.cfg.ID.Segment, wire.ErrFenced)
		case limited:
			return min(count, limit), nil
		case lac >= count:
			return count, nil
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return 0, fmt.Errorf("topic %s segment %d: waiting for the ack quorum: %w", r.cfg.ID.Topic, r.cfg.ID.Segment, ctx.Err())
			}
			c := r.capAtConfirmed()
			r.cfg.Logger.Warn("ack quorum does not hold the whole segment: sealing at the confirmed count", "topic", r.cfg.ID.Topic, "segment", r.cfg.ID.Segment, "entries", count, "confirmed", c)
			return c, nil
		case <-changed:
		}
	}
}

// capAtConfirmed freezes the last add confirmed: batches past it fail as
// unacked and no later acknowledgement can move it.
func (r *Replicator) capAtConfirmed() uint64 {
	r.mu.Lock()
	if !r.limited {
		r.limited = true
		r.ackLimit = r.lac
	}
	limit := r.ackLimit
	k := len(r.pending)
	for k > 0 && r.pending[k-1].end > limit {
		k--
	}
	lost := slices.Clone(r.pending[k:])
	r.pending = r.pending[:k]
	r.changedLocked()
	r.mu.Unlock()
	finish(lost, r.errUnacked())
	return limit
}

// Uncap lifts the cap of an abandoned seal (unfence).
func (r *Replicator) Uncap() {
	r.mu.Lock()
	r.limited = false
	done := r.advanceLocked()
	r.changedLocked()
	r.mu.Unlock()
	finish(done, nil)
}

// Pending is the number of batches waiting for their quorum, and a
// channel closed at the next change.
func (r *Replicator) Pending() (int, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending), r.changeLocked()
}
