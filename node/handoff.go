package node

import (
	"context"
	"time"

	"github.com/walrus-go/walrus/node/metadata"
)

// handoffTimeout bounds the graceful handoff at shutdown.
const handoffTimeout = 5 * time.Second

// handoff runs at a clean shutdown, after the client listener closed: the
// node stops appending (leases count as stale from now on, so forwarded
// appends get NotLeaderError and are retried elsewhere), waits for appends
// in progress, reports its exact counts in a final heartbeat and, with
// Config.HandoffOnShutdown, hands every open segment it leads to the next
// live voter with a rollover at its exact count. Writers move at once instead of
// waiting FailureTimeout for a failover, and no acknowledged entry is left
// past a sealed count. A final heartbeat reports the exact counts in case a
// proposal fails (the failover then uses them).
func (n *Node) handoff(ctx context.Context) {
	n.draining.Store(true)
	n.leases.mu.RLock()
	led := make(map[string]uint64, len(n.leases.m))
	for t, s := range n.leases.m {
		led[t] = s
	}
	n.leases.mu.RUnlock()
	if len(led) == 0 {
		return
	}
	// A flush that started before draining was set holds the writer's
	// lock; taking it once waits for that flush.
	n.writers.mu.Lock()
	ws := make([]*topicWriter, 0, len(n.writers.m))
	for _, w := range n.writers.m {
		ws = append(ws, w)
	}
	n.writers.mu.Unlock()
	for _, w := range ws {
		w.mu.Lock()
		w.mu.Unlock() //nolint:staticcheck // a barrier, not a critical section
	}
	// Replicated appends made before draining wait for their ack quorum:
	// answer them before the connections close.
	n.awaitPendingAcks(ctx)
	n.heartbeat(ctx)
	if !n.cfg.HandoffOnShutdown {
		return
	}

	m, err := n.cons.Membership()
	if err != nil {
		return
	}
	peers := n.peers.snapshot()
	var live []uint64
	for _, id := range m.Voters {
		if id != n.id && n.alive(id, peers) {
			live = append(live, id)
		}
	}
	if len(live) == 0 {
		return // single node: nothing to hand to
	}
	handed := map[string]uint64{}
	defer func() { n.awaitPeersMoved(ctx, handed, live) }()
	for topic, seg := range led {
		count, err := n.segmentCountOf(topic, seg)
		if err != nil {
			n.logger.Warn("handoff: count failed", "topic", topic, "segment", seg, "err", err)
			continue
		}
		// A replicated segment is handed over only once its followers
		// hold every entry (they serve it while this node is away).
		n.awaitReplicated(ctx, topic, seg, count)
		if count, err = n.confirmedCount(ctx, topic, seg, count); err != nil {
			n.logger.Warn("handoff: segment not confirmed; failover will move it", "topic", topic, "segment", seg, "err", err)
			continue
		}
		next := nextLeader(live, n.id)
		if err := n.proposeDirect(ctx, metadata.Rollover{Topic: topic, Segment: seg, Count: count, NextLeader: next, NextReplicas: n.replicasForNext(topic, next, live)}); err != nil {
			n.logger.Warn("handoff: rollover failed; failover will move the segment", "topic", topic, "segment", seg, "err", err)
			continue
		}
		handed[topic] = seg
		n.logger.Info("handoff: open segment handed over", "topic", topic, "sealed_segment", seg, "entries", count, "next_leader", next)
	}
}

// awaitPeersMoved waits (at most 1 s) until this node has applied the
// handoff rollovers and every live peer has reported, in a heartbeat, an
// applied index at least as high. Heartbeats travel on the same pipelined
// connection as forwarded appends, so once one arrives every append the
// peer forwarded here before it knew of the move has been read and
// answered (NotLeaderError, retried on the new leader). Closing the
// connections earlier would leave such appends with an unknown outcome.
func (n *Node) awaitPeersMoved(ctx context.Context, handed map[string]uint64, live []uint64) {
	if len(handed) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	var target uint64
	for {
		if target == 0 {
			moved := true
			for topic, seg := range handed {
				if r, ok := n.fsm.Route(topic); ok && r.Segment == seg {
					moved = false
				}
			}
			if moved {
				target = n.cons.Raft().AppliedIndex()
			}
		}
		if target != 0 {
			peers := n.peers.snapshot()
			all := true
			for _, id := range live {
				if p, ok := peers[id]; !ok || p.Applied < target {
					all = false
				}
			}
			if all {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// proposeDirect proposes through the current Raft leader without the
// request-path retry loop (which stops at shutdown).
func (n *Node) proposeDirect(ctx context.Context, cmd metadata.Command) error {
	b, err := metadata.Encode(cmd)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		id, addr := n.cons.Leader()
		var resp []byte
		switch {
		case id == 0:
			err = ErrNoRaftLeader
		case id == n.id:
			resp, err = n.proposeLocal(ctx, b)
		default:
			resp, err = n.callAddr(ctx, addr, methodPropose, b)
		}
		if err == nil {
			res, derr := decodeResult(resp)
			if derr != nil {
				return derr
			}
			return res.Err
		}
		if !isNotRaftLeader(err) && !isTransient(err) {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return ctx.Err()
}

// transferLeadership hands the Raft leadership to another voter before a
// clean shutdown, so the cluster does not wait an election timeout.
func (n *Node) transferLeadership() {
	if !n.cons.IsLeader() {
		return
	}
	m, err := n.cons.Membership()
	if err != nil || len(m.Voters) < 2 {
		return
	}
	if err := n.cons.Raft().LeadershipTransfer().Error(); err != nil {
		n.logger.Warn("leadership transfer at shutdown failed", "err", err)
		return
	}
	n.logger.Info("raft leadership transferred before shutdown")
}
