// Package catchup owns bringing this node's replicas of sealed segments up
// to their sealed count: a node that was down or lagging when a segment
// sealed copies the missing entries from the other replicas, then seals
// its copy. It follows the metadata's change log, so a pass with nothing
// to do costs nothing however many topics there are.
package catchup

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/retry"
)

// Tick is the period of the catch-up pass.
const Tick = time.Second

// pullTimeout bounds one segment's copy.
const pullTimeout = 30 * time.Second

// Metadata is what the catch-up reads of the Raft state.
type Metadata interface {
	metadata.ChangeSource
	View(topic string, fn func(t *metadata.Topic)) bool
}

// Store is what it uses of the local SegmentStore.
type Store interface {
	Stat(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error)
	Seal(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error)
}

// Puller copies a sealed segment here from sources until it holds count
// entries, and seals it.
type Puller func(ctx context.Context, topic string, seg, count uint64, sources []uint64) (uint64, error)

type segRef struct {
	topic string
	seg   uint64
}

type target struct {
	count   uint64
	sources []uint64
}

// Catcher tracks the sealed segments this node must hold and has not yet
// confirmed whole. Run and Pass are not for concurrent use.
type Catcher struct {
	FSM    Metadata
	Store  Store
	Pull   Puller
	Self   uint64
	Logger *slog.Logger

	follow metadata.Follower // where the pending set is in the change log
	// pending holds, per topic, the sealed segments this node is a
	// replica of and has not found complete yet. A topic's entry is
	// rebuilt whenever its metadata changes, so deleted topics and
	// segments drop out.
	pending map[string]map[uint64]target
	// done holds, per topic, the segments found complete (so a change to
	// the topic does not make them be looked at again).
	done map[string]map[uint64]struct{}
}

// Run runs a pass every Tick until ctx ends.
func (c *Catcher) Run(ctx context.Context) { retry.Every(ctx, Tick, c.Pass) }

// Pass refreshes the pending set from the metadata changes, seals every
// pending segment already held in full, and copies at most one segment
// (rate-limited: one per pass).
func (c *Catcher) Pass(ctx context.Context) {
	c.refresh()
	for _, topic := range slices.Sorted(maps.Keys(c.pending)) {
		segs := c.pending[topic]
		for _, seg := range slices.Sorted(maps.Keys(segs)) {
			if ctx.Err() != nil {
				return
			}
			if c.tryOne(ctx, topic, seg, segs[seg]) {
				return // copied (or tried to copy) one: that is this pass's
			}
		}
	}
}

// tryOne handles one pending segment and reports whether it started a copy.
func (c *Catcher) tryOne(ctx context.Context, topic string, seg uint64, tg target) bool {
	id := engine.SegmentID{Topic: topic, Segment: seg}
	info, err := c.Store.Stat(ctx, id)
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return false // the store is unwell: try again next pass
	}
	if info.Entries >= tg.count {
		if !info.Sealed && info.Entries > 0 {
			_, _ = c.Store.Seal(ctx, id)
		}
		c.markDone(topic, seg)
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, pullTimeout)
	got, err := c.Pull(pctx, topic, seg, tg.count, tg.sources)
	cancel()
	if err != nil {
		c.Logger.Warn("replica catch-up failed; will retry", "topic", topic, "segment", seg, "have", got, "sealed_count", tg.count, "err", err)
	} else {
		c.Logger.Info("replica caught up", "topic", topic, "segment", seg, "entries", got)
		c.markDone(topic, seg)
	}
	return true
}

func (c *Catcher) markDone(topic string, seg uint64) {
	if p := c.pending[topic]; p != nil {
		delete(p, seg)
		if len(p) == 0 {
			delete(c.pending, topic)
		}
	}
	d := c.done[topic]
	if d == nil {
		d = map[uint64]struct{}{}
		c.done[topic] = d
	}
	d[seg] = struct{}{}
}

// refresh brings pending up to the current metadata: the topics changed
// since the last pass, or every topic on the first pass and when the
// change log no longer covers the gap.
func (c *Catcher) refresh() {
	changed, full := c.follow.Next(c.FSM, metadata.ChangeRoute)
	done := c.done
	if full {
		c.pending = map[string]map[uint64]target{}
		c.done = map[string]map[uint64]struct{}{}
	}
	for _, name := range changed {
		c.rebuild(name, done[name])
	}
}

// rebuild recomputes one topic's pending and done sets from its metadata;
// prevDone are the segments found complete before.
func (c *Catcher) rebuild(topic string, prevDone map[uint64]struct{}) {
	pend := map[uint64]target{}
	done := map[uint64]struct{}{}
	c.FSM.View(topic, func(t *metadata.Topic) {
		for seg, set := range t.Replicas {
			count, sealed := t.SealedSegments[seg]
			if !sealed || !slices.Contains(set, c.Self) {
				continue
			}
			if _, ok := prevDone[seg]; ok {
				done[seg] = struct{}{}
				continue
			}
			pend[seg] = target{count: count, sources: slices.Clone(set)}
		}
	})
	setOrDelete(c.pending, topic, pend)
	setOrDelete(c.done, topic, done)
}

func setOrDelete[V any](m map[string]map[uint64]V, k string, v map[uint64]V) {
	if len(v) == 0 {
		delete(m, k)
		return
	}
	m[k] = v
}
