package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/metadata"
)

// monitorLoop runs the rollover monitor on the Raft leader.
func (n *Node) monitorLoop(ctx context.Context) {
	n.logger.Info("Monitor loop started", "interval", n.cfg.MonitorInterval.String(), "max_segment_entries", n.cfg.MaxSegmentEntries)
	t := time.NewTicker(n.cfg.MonitorInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case topic := <-n.rollHints:
			n.handleRollHint(ctx, topic)
			continue
		}
		if !n.cons.IsLeader() {
			continue
		}
		n.m.MonitorTicks.Inc()
		if err := n.monitorTick(ctx); err != nil && ctx.Err() == nil {
			n.m.MonitorTickFailures.Inc()
			n.logger.Error("monitor tick failed", "err", err)
		}
	}
}

// monitorTick rolls over every topic whose open segment is full.
func (n *Node) monitorTick(ctx context.Context) error {
	m, err := n.cons.Membership()
	if err != nil {
		return err
	}
	peers := n.peers.snapshot()
	var live []uint64
	for _, id := range m.Voters {
		if n.alive(id, peers) {
			live = append(live, id)
		}
	}
	var errs []error
	for topic, r := range n.fsm.Routes() {
		if ctx.Err() != nil {
			break
		}
		if !n.alive(r.Leader, peers) {
			continue // failoverDead moves it
		}
		if err := n.rolloverIfFull(ctx, topic, r, live); err != nil {
			errs = append(errs, fmt.Errorf("topic %s segment %d: %w", topic, r.Segment, err))
		}
	}
	return errors.Join(errs...)
}

// nextLeader is the next voter in id order after cur (wrapping around).
func nextLeader(voters []uint64, cur uint64) uint64 {
	if len(voters) == 0 {
		return cur
	}
	v := slices.Clone(voters)
	slices.Sort(v)
	for _, id := range v {
		if id > cur {
			return id
		}
	}
	return v[0]
}

func (n *Node) rolloverIfFull(ctx context.Context, topic string, r metadata.Route, voters []uint64) error {
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	count, fenced, err := n.fence(tctx, r.Leader, topic, r.Segment)
	if err != nil {
		return fmt.Errorf("fence on node %d: %w", r.Leader, err)
	}
	if !fenced {
		return nil
	}
	next := nextLeader(voters, r.Leader)
	res, err := n.cons.Propose(tctx, metadata.Rollover{Topic: topic, Segment: r.Segment, Count: count, NextLeader: next, NextReplicas: n.replicasForNext(topic, next, voters)})
	if err != nil {
		// Unknown outcome (timeout, leadership lost): the entry may still
		// commit. Unfencing now could let appends land past the count, so
		// the segment stays fenced; the next monitor tick on whichever node
		// leads re-proposes the same rollover (idempotent) with the same
		// exact count.
		n.logger.Error("Raft consensus failed", "op", "rollover", "topic", topic, "segment", r.Segment, "err", err)
		n.m.ObserveRollover(start, err)
		return err
	}
	if res.Err != nil {
		// Rejected by Apply: it will never take effect, so unfence.
		n.logger.Error("Raft consensus failed", "op", "rollover", "topic", topic, "segment", r.Segment, "err", res.Err)
		n.m.ObserveRollover(start, res.Err)
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer ucancel()
		if uerr := n.unfence(uctx, r.Leader, topic, r.Segment); uerr != nil {
			return errors.Join(res.Err, fmt.Errorf("unfence: %w", uerr))
		}
		return res.Err
	}
	n.m.ObserveRollover(start, nil)
	n.logger.Info("segment rolled over", "topic", topic, "sealed_segment", r.Segment, "entries", count, "next_leader", next, "took", time.Since(start).String())
	return nil
}

func (n *Node) fence(ctx context.Context, leader uint64, topic string, seg uint64) (uint64, bool, error) {
	if leader == n.id {
		return n.fenceLocal(ctx, topic, seg, n.cfg.MaxSegmentEntries)
	}
	var e enc
	e.str(topic)
	e.u64(seg)
	e.u64(n.cfg.MaxSegmentEntries)
	resp, err := n.call(ctx, leader, methodFence, e.b)
	if err != nil {
		return 0, false, err
	}
	if len(resp) != 9 {
		return 0, false, errShortPayload
	}
	d := dec{b: resp[1:]}
	return d.u64(), resp[0] == 1, d.done()
}

func (n *Node) unfence(ctx context.Context, leader uint64, topic string, seg uint64) error {
	if leader == n.id {
		return n.unfenceLocal(ctx, topic, seg)
	}
	var e enc
	e.str(topic)
	e.u64(seg)
	_, err := n.call(ctx, leader, methodUnfence, e.b)
	return err
}

// segmentCountOf returns the local entry count of a segment.
func (n *Node) segmentCountOf(topic string, seg uint64) (uint64, error) {
	return n.segmentCount(engine.SegmentID{Topic: topic, Segment: seg})
}

func upsertSelf(n *Node) metadata.Command { return metadata.UpsertNode{Node: n.self} }

// failoverDead runs on the Raft leader every heartbeat interval and moves
// every topic whose open segment leader is down.
func (n *Node) failoverDead(ctx context.Context) error {
	m, err := n.cons.Membership()
	if err != nil {
		return err
	}
	peers := n.peers.snapshot()
	var live []uint64
	for _, id := range m.Voters {
		if n.alive(id, peers) {
			live = append(live, id)
		}
	}
	var errs []error
	for topic, r := range n.fsm.Routes() {
		if ctx.Err() != nil || n.alive(r.Leader, peers) {
			continue
		}
		if set, _, _ := n.fsm.SegmentReplicas(topic, r.Segment); len(set) > 1 {
			// Replicated: the survivors hold every acknowledged entry.
			if err := n.recoverSegment(ctx, topic, r, live); err != nil {
				errs = append(errs, fmt.Errorf("topic %s segment %d: recovery from node %d: %w", topic, r.Segment, r.Leader, err))
			} else {
				n.m.ReplicaFailovers.Inc()
			}
			continue
		}
		if _, heard := peers[r.Leader]; !heard {
			// Never heard from it (e.g. the whole cluster restarted and it
			// is not back yet): no count is known, so sealing would hide
			// its entries. Wait for it instead.
			continue
		}
		if err := n.failover(ctx, topic, r, live, peers); err != nil {
			errs = append(errs, fmt.Errorf("topic %s segment %d: failover from node %d: %w", topic, r.Segment, r.Leader, err))
		}
	}
	return errors.Join(errs...)
}

// failover moves a topic whose open segment leader is down to a live
// node: the segment is sealed at the count the dead node last reported in
// its heartbeats (the count known to the cluster; entries it acknowledged
// after that report are not readable until segment replication exists),
// and the next segment opens on the next live voter.
func (n *Node) failover(ctx context.Context, topic string, r metadata.Route, live []uint64, peers map[uint64]peerProgress) error {
	if len(live) == 0 {
		return errors.New("no live voter to take over")
	}
	count := peers[r.Leader].Open[segKey{topic, r.Segment}]
	next := nextLeader(live, r.Leader)
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := n.cons.Propose(tctx, metadata.Rollover{Topic: topic, Segment: r.Segment, Count: count, NextLeader: next, NextReplicas: n.replicasForNext(topic, next, live)})
	if err == nil {
		err = res.Err
	}
	n.m.ObserveRollover(start, err)
	if err != nil {
		n.logger.Error("Raft consensus failed", "op", "failover", "topic", topic, "segment", r.Segment, "err", err)
		return err
	}
	n.logger.Warn("segment leader down: sealed its open segment at the last reported count and moved the topic", "topic", topic, "segment", r.Segment, "dead_leader", r.Leader, "entries", count, "next_leader", next)
	return nil
}

// rollHintCap bounds queued "segment full" hints; extra hints are dropped
// (the periodic tick still catches the segment).
const rollHintCap = 256

// hintRollover reports, without blocking, that a segment this node leads
// reached MaxSegmentEntries.
func (n *Node) hintRollover(topic string) {
	select {
	case n.rollHints <- topic:
	default:
	}
}

// handleRollHint rolls the topic over now on the Raft leader, or passes the
// hint to the leader.
func (n *Node) handleRollHint(ctx context.Context, topic string) {
	if !n.cons.IsLeader() {
		id, addr := n.cons.Leader()
		if id == 0 {
			return
		}
		var e enc
		e.str(topic)
		hctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		_, _ = n.callAddr(hctx, addr, methodRollHint, e.b)
		return
	}
	r, ok := n.fsm.Route(topic)
	if !ok {
		return
	}
	m, err := n.cons.Membership()
	if err != nil {
		return
	}
	peers := n.peers.snapshot()
	var live []uint64
	for _, id := range m.Voters {
		if n.alive(id, peers) {
			live = append(live, id)
		}
	}
	if err := n.rolloverIfFull(ctx, topic, r, live); err != nil && ctx.Err() == nil {
		n.m.MonitorTickFailures.Inc()
		n.logger.Error("monitor tick failed", "topic", topic, "err", err)
	}
}
