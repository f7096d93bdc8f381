package rollover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/walrus-go/walrus/node/copyrange"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/placement"
	"github.com/walrus-go/walrus/node/retry"
	"github.com/walrus-go/walrus/node/wire"
)

// failoverLoop moves, on the Raft leader, every topic whose open segment
// leader is down.
func (r *Rollover) failoverLoop(ctx context.Context) {
	retry.Every(ctx, r.cfg.FailoverInterval, func(ctx context.Context) {
		if !r.Cons.IsLeader() {
			return
		}
		if err := r.failoverDead(ctx); err != nil && ctx.Err() == nil {
			r.Logger.Error("monitor tick failed", "op", "failover", "err", err)
			r.Metrics.MonitorTickFailures.Inc()
		}
	})
}

// StepDown is the receiving side of wire.MethodStepDown: the leader of a
// topic's open segment gave it up; the failover loop recovers it as if
// that leader were dead.
func (r *Rollover) StepDown(_ context.Context, topic string, seg uint64) error {
	if !r.Cons.IsLeader() {
		return fmt.Errorf("step down %s/%d: %w", topic, seg, wire.ErrNotRaftLeader)
	}
	if rt, ok := r.FSM.Route(topic); !ok || rt.Segment != seg {
		return nil // moved already
	}
	r.mu.Lock()
	if _, ok := r.deposed[segRef{topic, seg}]; !ok {
		r.Logger.Warn("segment leader stepped down: recovering the segment from its replicas", "topic", topic, "segment", seg)
	}
	r.deposed[segRef{topic, seg}] = time.Now()
	r.mu.Unlock()
	return nil
}

// isDeposed reports (and prunes) step-downs of open segments.
func (r *Rollover) isDeposed(topic string, rt metadata.Route) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, at := range r.deposed {
		if cur, ok := r.FSM.Route(k.topic); !ok || cur.Segment != k.seg || time.Since(at) > time.Minute {
			delete(r.deposed, k)
		}
	}
	_, ok := r.deposed[segRef{topic, rt.Segment}]
	return ok
}

// suspects are the topics whose open segment leader is not alive or
// stepped down: only those need a look, so a tick with every leader alive
// costs a few map reads however many topics there are.
func (r *Rollover) suspects() []string {
	r.leaders.Refresh(r.FSM)
	var out []string
	for _, id := range r.leaders.Leaders() {
		if !r.Cluster.Alive(id) {
			out = append(out, r.leaders.TopicsLedBy(id)...)
		}
	}
	r.mu.Lock()
	for k := range r.deposed {
		out = append(out, k.topic)
	}
	r.mu.Unlock()
	slices.Sort(out)
	return slices.Compact(out)
}

func (r *Rollover) failoverDead(ctx context.Context) error {
	live, err := r.Cluster.LiveVoters()
	if err != nil {
		return err
	}
	var errs []error
	verified := false
	for _, topic := range r.suspects() {
		if ctx.Err() != nil {
			continue
		}
		rt, ok := r.FSM.Route(topic)
		if !ok {
			continue
		}
		deposed := r.isDeposed(topic, rt)
		if !deposed && r.Cluster.Alive(rt.Leader) {
			continue
		}
		if !verified {
			// Verdicts of a leader that has just lost its leadership (it
			// was paused, partitioned) must not fence anything.
			if err := r.Cons.Raft().VerifyLeader().Error(); err != nil {
				return fmt.Errorf("verify raft leadership before failover: %w", err)
			}
			verified = true
		}
		if set, _, _ := r.FSM.SegmentReplicas(topic, rt.Segment); len(set) > 1 {
			// Replicated: the survivors hold every acknowledged entry.
			if err := r.recoverSegment(ctx, topic, rt, live); err != nil {
				errs = append(errs, fmt.Errorf("topic %s segment %d: recovery from node %d: %w", topic, rt.Segment, rt.Leader, err))
			} else {
				r.Metrics.ReplicaFailovers.Inc()
			}
			continue
		}
		if deposed {
			// An unreplicated segment whose leader lost its store: seal it
			// at what that leader holds and move on.
			if err := r.rollNow(ctx, topic, rt, live); err != nil {
				errs = append(errs, fmt.Errorf("topic %s segment %d: roll over for node %d: %w", topic, rt.Segment, rt.Leader, err))
			}
			continue
		}
		if !r.Cluster.Heard(rt.Leader) {
			// Never heard from it (e.g. the whole cluster restarted and it
			// is not back yet): no count is known, so sealing would hide
			// its entries. Wait for it instead.
			continue
		}
		if err := r.failover(ctx, topic, rt, live); err != nil {
			errs = append(errs, fmt.Errorf("topic %s segment %d: failover from node %d: %w", topic, rt.Segment, rt.Leader, err))
		}
	}
	return errors.Join(errs...)
}

// failover moves an unreplicated topic whose open segment leader is down
// to a live node: the segment is sealed at the count the dead node last
// reported in its heartbeats (entries it acknowledged after that report
// are not readable), and the next segment opens on the next live voter.
func (r *Rollover) failover(ctx context.Context, topic string, rt metadata.Route, live []uint64) error {
	if len(live) == 0 {
		return errors.New("no live voter to take over")
	}
	count := r.Cluster.ReportedCount(rt.Leader, topic, rt.Segment)
	next := placement.NextLeader(live, rt.Leader)
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.sealAndOpen(tctx, seal{op: "failover", topic: topic, seg: rt.Segment, count: count, next: next, live: live, start: time.Now()}); err != nil {
		return err
	}
	r.Logger.Warn("segment leader down: sealed its open segment at the last reported count and moved the topic", "topic", topic, "segment", rt.Segment, "dead_leader", rt.Leader, "entries", count, "next_leader", next)
	return nil
}

// recoverSegment replaces a dead leader of a replicated open segment:
// fence the surviving replicas at a higher epoch, seal at the highest
// count a responder holds, bring lagging responders up to it, and open
// the next segment on a live node. placement.RecoveryQuorum says why the
// highest count among that many responders covers every acknowledged
// entry; the fence comes first, so no responder acknowledges anything
// after reporting its count.
func (r *Rollover) recoverSegment(ctx context.Context, topic string, rt metadata.Route, live []uint64) error {
	set, ack, ok := r.FSM.SegmentReplicas(topic, rt.Segment)
	if !ok {
		return fmt.Errorf("recover: unknown segment")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	need := placement.RecoveryQuorum(len(set), ack)
	epoch := max(rt.Epoch, 1) + 1
	start := time.Now()

	type answer struct {
		count uint64
		err   error
	}
	answers := make([]answer, len(set))
	var wg sync.WaitGroup
	for i, id := range set {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			c, err := r.Peer(id).ReplicaFence(fctx, topic, rt.Segment, epoch)
			answers[i] = answer{count: c, err: err}
		}()
	}
	wg.Wait()
	var resp []placement.Answer
	counts := map[uint64]uint64{}
	for i, a := range answers {
		if a.err == nil {
			resp = append(resp, placement.Answer{ID: set[i], Count: a.count})
			counts[set[i]] = a.count
		}
	}
	if len(resp) < need {
		return fmt.Errorf("recovery needs %d of replicas %v to answer the fence, %d did: %w", need, set, len(resp), wire.ErrSegmentUnavailable)
	}
	count, src, _ := placement.SealPoint(resp, rt.Leader)
	// The sealed count must be held by a replica other than the suspected
	// leader before the seal commits (BookKeeper copies a recovered tail
	// before it closes a ledger): a tail only that node holds (it answered
	// the fence after a pause) would be unreadable if it then died. Copy
	// to the lagging responders; if the tail cannot leave the old leader,
	// retry at the next tick (by then it is either reachable or gone, and
	// then not a responder).
	held := false
	for _, a := range resp {
		if a.Count >= count {
			held = held || a.ID != rt.Leader
			continue
		}
		// Bounded: a far-behind survivor finishes through catch-up after
		// the seal instead of delaying the failover.
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		err := copyrange.Copy(cctx, r.Peer(src), r.Peer(a.ID), topic, rt.Segment, epoch, a.Count, count, 5*time.Second)
		ccancel()
		if err != nil {
			r.Logger.Warn("recovery: copying to a lagging replica failed", "topic", topic, "segment", rt.Segment, "replica", a.ID, "err", fmt.Errorf("from node %d: %w", src, err))
			continue
		}
		held = held || a.ID != rt.Leader
	}
	if !held {
		return fmt.Errorf("recovery: the %d entries to seal are on node %d (the suspected leader) only and could not be copied; will retry: %w", count, rt.Leader, wire.ErrSegmentUnavailable)
	}
	next := placement.NextLeader(live, rt.Leader)
	if err := r.sealAndOpen(ctx, seal{op: "failover", topic: topic, seg: rt.Segment, count: count, next: next, live: live, start: start}); err != nil {
		return err
	}
	r.Logger.Warn("segment leader down: fenced the replicas, sealed the segment at the highest replica count and moved the topic",
		"topic", topic, "segment", rt.Segment, "dead_leader", rt.Leader, "entries", count, "replica_counts", fmt.Sprint(counts), "epoch", epoch, "next_leader", next, "took", time.Since(start).String())
	return nil
}
