// Package retention owns deleting data: the Raft leader applies every
// topic's limits (max_age_ms, max_bytes, max_entries) by proposing which
// oldest sealed segments a topic drops, whole segments at a time as Kafka
// does; every node then deletes the files of segments the metadata no
// longer lists (dropped by retention, or of a deleted topic), including a
// node that was down when the deletion was decided.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/retry"
	"github.com/walrus-go/walrus/node/wire"
)

// Holder reports what one node's store holds of a segment (a wire.Client,
// or this node).
type Holder interface {
	Stat(ctx context.Context, topic string, seg uint64) (entries, bytes uint64, err error)
}

// Times reads the time of the entry at a topic-wide offset (package
// topiclog).
type Times interface {
	TimeAt(ctx context.Context, topic string, off uint64) (int64, error)
}

// Deps are the parts the enforcer uses.
type Deps struct {
	Cons   *consensus.Consensus
	FSM    *metadata.FSM
	Peer   func(id uint64) Holder
	Times  Times
	Logger *slog.Logger
	// Interval is how often the limits are applied.
	Interval time.Duration
	// Defaults are the limits of topics that do not set their own.
	Defaults metadata.Limits
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// fact is what the enforcer learned about one sealed segment; sealed
// segments never change, so it is read once.
type fact struct {
	bytes    uint64
	hasBytes bool
	last     int64 // time of the last entry (ms)
	hasLast  bool
}

// Enforcer applies the limits while this node is the Raft leader.
type Enforcer struct {
	Deps
	mu sync.Mutex
	// facts per topic and sealed segment; pruned to the segments the
	// metadata lists, and dropped with a topic that needs no enforcing.
	facts map[string]map[uint64]fact
	// limited are the topics with a limit and a sealed segment (the only
	// ones a pass looks at), kept up to date from the metadata's change
	// log, so a pass over a cluster without limits costs nothing.
	limited map[string]struct{}
	follow  metadata.Follower
}

// New builds the enforcer; Run runs it.
func New(d Deps) *Enforcer {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Enforcer{Deps: d, facts: map[string]map[uint64]fact{}, limited: map[string]struct{}{}}
}

// refresh brings the limited set up to the metadata.
func (e *Enforcer) refresh() {
	changed, full := e.follow.Next(e.FSM, metadata.ChangeRoute|metadata.ChangeRetention)
	if full {
		clear(e.limited)
	}
	for _, name := range changed {
		limited := false
		e.FSM.View(name, func(t *metadata.Topic) {
			limited = t.Retention.Effective(e.Defaults).Limited() && t.CurrentSegment > t.BaseSegment()
		})
		if limited {
			e.limited[name] = struct{}{}
			continue
		}
		delete(e.limited, name)
		e.mu.Lock()
		delete(e.facts, name)
		e.mu.Unlock()
	}
}

// Run applies the limits every Interval until ctx ends.
func (e *Enforcer) Run(ctx context.Context) {
	retry.Every(ctx, e.Interval, func(ctx context.Context) { _ = e.Pass(ctx) })
}

// Pass applies every topic's limits once (on the Raft leader; elsewhere it
// does nothing).
func (e *Enforcer) Pass(ctx context.Context) error {
	if !e.Cons.IsLeader() {
		e.mu.Lock()
		clear(e.facts)
		e.mu.Unlock()
		e.follow.Reset() // a new term starts from a full scan
		return nil
	}
	e.refresh()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(e.limited)) {
		t, ok := e.FSM.Topic(name)
		if !ok {
			continue
		}
		e.prune(&t)
		limits := t.Retention.Effective(e.Defaults)
		if !limits.Limited() {
			continue
		}
		through, ok, err := e.plan(ctx, &t, limits)
		if err != nil {
			errs = append(errs, err)
		}
		if !ok {
			continue
		}
		res, err := e.Cons.Propose(ctx, metadata.DeleteSegments{Topic: name, Through: through})
		if err == nil {
			err = res.Err
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("retention %s: %w", name, err))
			continue
		}
		e.Logger.Info("retention deleted segments", "topic", name, "from", t.BaseSegment(), "through", through)
	}
	return errors.Join(errs...)
}

// prune forgets facts of segments the topic no longer has.
func (e *Enforcer) prune(t *metadata.Topic) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for seg := range e.facts[t.Name] {
		if seg < t.BaseSegment() {
			delete(e.facts[t.Name], seg)
		}
	}
}

// plan returns the last segment the topic drops (Kafka's rule): a sealed
// segment goes when all its entries are older than max_age_ms, or when the
// topic would still hold at least max_bytes / max_entries without it.
// Segments go oldest first and never the open one.
func (e *Enforcer) plan(ctx context.Context, t *metadata.Topic, r metadata.Limits) (uint64, bool, error) {
	base := t.BaseSegment()
	// What the topic holds: sealed entries plus the open segment's.
	openEntries, openBytes, err := e.openSize(ctx, t, r.MaxBytes > 0)
	if err != nil {
		return 0, false, err
	}
	entries := t.SealedOffset - t.Earliest + openEntries
	var bytes uint64
	if r.MaxBytes > 0 {
		bytes = openBytes
		for s := base; s < t.CurrentSegment; s++ {
			f, err := e.fact(ctx, t, s, true, false)
			if err != nil {
				return 0, false, err
			}
			bytes += f.bytes
		}
	}
	cutoff := e.Now().UnixMilli() - r.MaxAgeMs
	through, drop := uint64(0), false
	for s := base; s < t.CurrentSegment; s++ {
		count := t.SealedSegments[s]
		del := false
		if r.MaxEntries > 0 && entries-count >= r.MaxEntries {
			del = true
		}
		var f fact
		if r.MaxBytes > 0 {
			f, _ = e.fact(ctx, t, s, true, false)
			if bytes-f.bytes >= r.MaxBytes {
				del = true
			}
		}
		if !del && r.MaxAgeMs > 0 {
			if count == 0 {
				del = true
			} else if f, err = e.fact(ctx, t, s, false, true); err == nil && f.last < cutoff {
				del = true
			}
		}
		if !del {
			break
		}
		through, drop = s, true
		entries -= count
		bytes -= f.bytes
	}
	return through, drop, nil
}

// openSize asks the open segment's leader what it holds.
func (e *Enforcer) openSize(ctx context.Context, t *metadata.Topic, needBytes bool) (uint64, uint64, error) {
	n, b, err := e.Peer(t.LeaderNode).Stat(ctx, t.Name, t.CurrentSegment)
	if errors.Is(err, engine.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil && !needBytes {
		return 0, 0, nil // the count limit is applied on sealed counts alone
	}
	return n, b, err
}

// fact returns (reading once) the size or the last time of a sealed
// segment.
func (e *Enforcer) fact(ctx context.Context, t *metadata.Topic, seg uint64, wantBytes, wantLast bool) (fact, error) {
	e.mu.Lock()
	f := e.facts[t.Name][seg]
	e.mu.Unlock()
	if wantBytes && !f.hasBytes {
		var errs []error
		for _, id := range t.SegmentReplicas(seg) {
			n, b, err := e.Peer(id).Stat(ctx, t.Name, seg)
			if err == nil && n >= t.SealedSegments[seg] {
				f.bytes, f.hasBytes = b, true
				break
			}
			errs = append(errs, fmt.Errorf("node %d: %v", id, err))
		}
		if !f.hasBytes {
			return f, fmt.Errorf("retention %s segment %d: no replica reported its size: %w", t.Name, seg, errors.Join(errs...))
		}
	}
	if wantLast && !f.hasLast {
		start, _ := t.SegmentStart(seg)
		ts, err := e.Times.TimeAt(ctx, t.Name, start+t.SealedSegments[seg]-1)
		if err != nil {
			return f, fmt.Errorf("retention %s segment %d: %w", t.Name, seg, err)
		}
		f.last, f.hasLast = ts, true
	}
	e.mu.Lock()
	if e.facts[t.Name] == nil {
		e.facts[t.Name] = map[uint64]fact{}
	}
	e.facts[t.Name][seg] = f
	e.mu.Unlock()
	return f, nil
}

var _ Holder = wire.Client{}
