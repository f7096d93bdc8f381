package retention

import (
	"context"
	"log/slog"
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
}

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
// how many it deleted.
func (j *Janitor) Pass(ctx context.Context) int {
	infos, err := j.Store.List(ctx, "")
	if err != nil {
		j.Logger.Warn("retention: listing local segments failed; will retry", "err", err)
		return 0
	}
	deleted := 0
	for _, info := range infos {
		if !j.gone(info.ID.Topic, info.ID.Segment) {
			continue
		}
		if err := j.Store.Delete(ctx, info.ID); err != nil {
			j.Logger.Warn("retention: deleting a segment failed; will retry", "segment", info.ID.String(), "err", err)
			continue
		}
		deleted++
		j.Logger.Info("segment deleted", "topic", info.ID.Topic, "segment", info.ID.Segment, "entries", info.Entries, "bytes", info.Bytes)
	}
	if err := j.Forget.Forget(j.gone); err != nil {
		j.Logger.Warn("retention: pruning replica metadata failed; will retry", "err", err)
	}
	return deleted
}
