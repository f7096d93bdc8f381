package rollover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/placement"
)

// monitorLoop rolls full segments over, every MonitorInterval and at once
// when a segment leader reports a segment full.
func (r *Rollover) monitorLoop(ctx context.Context) {
	r.Logger.Info("Monitor loop started", "interval", r.cfg.MonitorInterval.String(), "max_segment_entries", r.cfg.MaxSegmentEntries)
	t := time.NewTicker(r.cfg.MonitorInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case topic := <-r.hints:
			r.handleHint(ctx, topic)
			continue
		}
		if !r.Cons.IsLeader() {
			continue
		}
		r.Metrics.MonitorTicks.Inc()
		if err := r.monitorTick(ctx); err != nil && ctx.Err() == nil {
			r.Metrics.MonitorTickFailures.Inc()
			r.Logger.Error("monitor tick failed", "err", err)
		}
	}
}

// Hint reports, without blocking, that a segment this node leads reached
// MaxSegmentEntries.
func (r *Rollover) Hint(topic string) {
	select {
	case r.hints <- topic:
	default:
	}
}

// RollHint is the receiving side of wire.MethodRollHint.
func (r *Rollover) RollHint(_ context.Context, topic string) error {
	r.Hint(topic)
	return nil
}

// handleHint rolls the topic over now on the Raft leader, or passes the
// hint to the leader.
func (r *Rollover) handleHint(ctx context.Context, topic string) {
	if !r.Cons.IsLeader() {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		r.Cluster.SendRollHint(hctx, topic)
		return
	}
	rt, ok := r.FSM.Route(topic)
	if !ok {
		return
	}
	live, err := r.Cluster.LiveVoters()
	if err != nil {
		return
	}
	if err := r.rolloverIfFull(ctx, topic, rt, live); err != nil && ctx.Err() == nil {
		r.Metrics.MonitorTickFailures.Inc()
		r.Logger.Error("monitor tick failed", "topic", topic, "err", err)
	}
}

// monitorTick rolls over every topic whose open segment is full.
func (r *Rollover) monitorTick(ctx context.Context) error {
	live, err := r.Cluster.LiveVoters()
	if err != nil {
		return err
	}
	var errs []error
	for _, topic := range r.fullCandidates(ctx) {
		if ctx.Err() != nil {
			break
		}
		rt, ok := r.FSM.Route(topic)
		if !ok {
			continue
		}
		if !r.Cluster.Alive(rt.Leader) {
			continue // the failover loop moves it
		}
		if err := r.rolloverIfFull(ctx, topic, rt, live); err != nil {
			errs = append(errs, fmt.Errorf("topic %s segment %d: %w", topic, rt.Segment, err))
		}
	}
	return errors.Join(errs...)
}

// fullCandidates are the topics the tick asks to fence. With only the
// entry limit set, those whose open segment was last counted at or over
// it (heartbeats of the peers, this node's own counts): no RPC goes to a
// segment that is not full. With a size or age limit every topic is a
// candidate, as the count alone cannot tell.
func (r *Rollover) fullCandidates(ctx context.Context) []string {
	if r.cfg.MaxSegmentBytes > 0 || r.cfg.MaxSegmentAge > 0 {
		return r.FSM.TopicNames()
	}
	out := r.Cluster.TopicsAtLeast(r.cfg.MaxSegmentEntries)
	for topic, seg := range r.Segments.Led() {
		if n, err := r.Segments.Count(ctx, topic, seg); err == nil && n >= r.cfg.MaxSegmentEntries {
			out = append(out, topic)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// rollNow rolls the open segment over at once, at its exact count.
func (r *Rollover) rollNow(ctx context.Context, topic string, rt metadata.Route, live []uint64) error {
	return r.roll(ctx, topic, rt, live, 0)
}

// rolloverIfFull asks the segment leader to fence the open segment if it
// holds >= MaxSegmentEntries (the fence is an op in the topic writer's
// queue, so the count is exact), or any entry once it is older than
// MaxSegmentAge or holds MaxSegmentBytes, then seals it there and opens
// the next segment on the next voter in id order.
func (r *Rollover) rolloverIfFull(ctx context.Context, topic string, rt metadata.Route, live []uint64) error {
	return r.roll(ctx, topic, rt, live, r.minToRoll(ctx, topic, rt))
}

// minToRoll is the entry count at which the open segment rolls now.
func (r *Rollover) minToRoll(ctx context.Context, topic string, rt metadata.Route) uint64 {
	if age := r.cfg.MaxSegmentAge; age > 0 {
		var opened int64
		r.FSM.View(topic, func(t *metadata.Topic) { opened = t.OpenedAtMs })
		if opened > 0 && time.Since(time.UnixMilli(opened)) >= age {
			return 1
		}
	}
	if r.cfg.MaxSegmentBytes > 0 {
		if _, b, err := r.Peer(rt.Leader).Stat(ctx, topic, rt.Segment); err == nil && b >= r.cfg.MaxSegmentBytes {
			return 1
		}
	}
	return r.cfg.MaxSegmentEntries
}

// roll fences the open segment on its leader if it holds >= min entries
// and seals it at the fenced count.
func (r *Rollover) roll(ctx context.Context, topic string, rt metadata.Route, live []uint64, min uint64) error {
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	count, fenced, err := r.Peer(rt.Leader).Fence(tctx, topic, rt.Segment, min)
	if err != nil {
		return fmt.Errorf("fence on node %d: %w", rt.Leader, err)
	}
	if !fenced {
		return nil
	}
	next := placement.NextLeader(live, rt.Leader)
	if err := r.sealAndOpen(tctx, seal{op: "rollover", topic: topic, seg: rt.Segment, count: count, next: next, live: live, fencedOn: rt.Leader, start: start}); err != nil {
		return err
	}
	r.Logger.Info("segment rolled over", "topic", topic, "sealed_segment", rt.Segment, "entries", count, "next_leader", next, "took", time.Since(start).String())
	return nil
}
