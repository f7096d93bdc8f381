package retention

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/retry"
)

// Forgetter drops what a node keeps in memory and in replica_meta about
// deleted segments (package segment).
type Forgetter interface {
	Forget(gone func(topic string, seg uint64) bool) error
}

// Janitor deletes the local files of segments the metadata no longer
// lists. It needs no proof that this node's metadata is current: a
// segment is deleted only when the metadata says so (below a topic's base
// segment, or numbered before a deleted topic's tombstone), never because
// a topic is missing, which may only mean its creation is not applied yet.
type Janitor struct {
	Store    engine.SegmentStore
	FSM      *metadata.FSM
	Forget   Forgetter
	Logger   *slog.Logger
	Interval time.Duration

	// What the last pass covered (Pass is not for concurrent use): the
	// metadata version, and whether it ended with nothing left to retry.
	seen     uint64
	clean    bool
	lastFull time.Time
}

// fullSweepEvery is how often the janitor looks at every local segment
// even when the metadata deleted nothing.
const fullSweepEvery = 10 * time.Minute

// Run runs a pass every Interval until ctx ends.
func (j *Janitor) Run(ctx context.Context) {
	retry.Every(ctx, j.Interval, func(ctx context.Context) { j.Pass(ctx) })
}

// gone reports whether the metadata says segment seg of topic is deleted.
func (j *Janitor) gone(topic string, seg uint64) bool {
	del := false
	if !j.FSM.View(topic, func(t *metadata.Topic) { del = seg < t.BaseSegment() }) {
		del = seg < j.FSM.DeletedBefore(topic)
	}
	return del
}

// Pass deletes every local segment the metadata says is gone and returns
// how many it deleted. The first pass (and one after a failure) looks at
// every local segment; later ones only at the topics the metadata
// deleted something of since, so a quiet cluster costs nothing.
func (j *Janitor) Pass(ctx context.Context) int {
	var changed []string
	now, ok := j.FSM.ChangesSince(j.seen, metadata.ChangeRetention, func(t string) { changed = append(changed, t) })
	// A slow full sweep also catches files written after their deletion
	// was applied (a replica copy that was in flight then).
	full := !j.clean || !ok || time.Since(j.lastFull) > fullSweepEvery
	if !full && len(changed) == 0 {
		j.seen = now
		return 0
	}
	if full {
		j.lastFull = time.Now()
		now = j.FSM.Version()
		changed = []string{""} // List("") is every topic
	}
	slices.Sort(changed)
	changed = slices.Compact(changed)
	deleted, clean := 0, true
	for _, topic := range changed {
		n, ok := j.sweep(ctx, topic)
		deleted += n
		clean = clean && ok
	}
	if err := j.Forget.Forget(j.gone); err != nil {
		j.Logger.Warn("retention: pruning replica metadata failed; will retry", "err", err)
		clean = false
	}
	j.seen, j.clean = now, clean
	return deleted
}

// sweep deletes the gone segments of one topic ("" every topic) and
// reports whether nothing failed.
func (j *Janitor) sweep(ctx context.Context, topic string) (int, bool) {
	infos, err := j.Store.List(ctx, topic)
	if err != nil {
		j.Logger.Warn("retention: listing local segments failed; will retry", "err", err)
		return 0, false
	}
	deleted, clean := 0, true
	for _, info := range infos {
		if !j.gone(info.ID.Topic, info.ID.Segment) {
			continue
		}
		if err := j.Store.Delete(ctx, info.ID); err != nil {
			j.Logger.Warn("retention: deleting a segment failed; will retry", "segment", info.ID.String(), "err", err)
			clean = false
			continue
		}
		deleted++
		j.Logger.Info("segment deleted", "topic", info.ID.Topic, "segment", info.ID.Segment, "entries", info.Entries, "bytes", info.Bytes)
	}
	return deleted, clean
}
