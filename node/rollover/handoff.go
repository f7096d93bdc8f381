package rollover

import (
	"context"
	"slices"
	"time"

	"github.com/walrus-go/walrus/node/placement"
)

// Handoff runs at a clean shutdown, after the client listener closed: the
// node stops appending, waits for appends in progress, reports its exact
// counts in a final heartbeat and, with HandoffOnShutdown, hands every
// open segment it leads to the next live voter with a rollover at its
// exact count. Writers move at once instead of waiting FailureTimeout for
// a failover, and no acknowledged entry is left past a sealed count. The
// final heartbeat carries the exact counts in case a proposal fails (the
// failover then uses them).
func (r *Rollover) Handoff(ctx context.Context) {
	r.Segments.Drain()
	led := r.Segments.Led()
	if len(led) == 0 {
		return
	}
	r.Segments.Quiesce(ctx)
	r.Cluster.Beat(ctx)
	if !r.cfg.HandoffOnShutdown {
		return
	}
	voters, err := r.Cluster.LiveVoters()
	if err != nil {
		return
	}
	live := slices.DeleteFunc(voters, func(id uint64) bool { return id == r.cfg.Self })
	if len(live) == 0 {
		return // single node: nothing to hand to
	}
	handed := map[string]uint64{}
	defer func() { r.awaitPeersMoved(ctx, handed, live) }()
	for topic, seg := range led {
		count, err := r.Segments.Count(ctx, topic, seg)
		if err != nil {
			r.Logger.Warn("handoff: count failed", "topic", topic, "segment", seg, "err", err)
			continue
		}
		// A replicated segment is handed over only once its followers
		// hold every entry (they serve it while this node is away).
		r.Segments.AwaitReplicated(ctx, topic, seg, count)
		if count, err = r.Segments.Confirmed(ctx, topic, seg, count); err != nil {
			r.Logger.Warn("handoff: segment not confirmed; failover will move it", "topic", topic, "segment", seg, "err", err)
			continue
		}
		next := placement.NextLeader(live, r.cfg.Self)
		if err := r.sealAndOpen(ctx, seal{op: "handoff", topic: topic, seg: seg, count: count, next: next, live: live, direct: true, start: time.Now()}); err != nil {
			r.Logger.Warn("handoff: rollover failed; failover will move the segment", "topic", topic, "segment", seg, "err", err)
			continue
		}
		handed[topic] = seg
		r.Logger.Info("handoff: open segment handed over", "topic", topic, "sealed_segment", seg, "entries", count, "next_leader", next)
	}
}

// awaitPeersMoved waits (at most 1 s) until this node has applied the
// handoff rollovers and every live peer has reported, in a heartbeat, an
// applied index at least as high. Heartbeats travel on the same pipelined
// connection as forwarded appends, so once one arrives every append the
// peer forwarded here before it knew of the move has been read and
// answered (NotLeaderError, retried on the new leader). Closing the
// connections earlier would leave such appends with an unknown outcome.
func (r *Rollover) awaitPeersMoved(ctx context.Context, handed map[string]uint64, live []uint64) {
	if len(handed) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var target uint64
	for {
		changed := r.FSM.Changed()
		if target == 0 {
			moved := true
			for topic, seg := range handed {
				if rt, ok := r.FSM.Route(topic); ok && rt.Segment == seg {
					moved = false
				}
			}
			if moved {
				target = r.Cons.Raft().AppliedIndex()
			}
		}
		if target != 0 {
			all := true
			for _, id := range live {
				if r.Cluster.PeerApplied(id) < target {
					all = false
				}
			}
			if all {
				return
			}
		}
		// Heartbeats arrive every 250 ms; the metadata change wakes the
		// first phase at once.
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}
