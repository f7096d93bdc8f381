package rollover

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/placement"
	"github.com/walrus-go/walrus/node/status"
)

// replicationTick is the period of the re-replication pass.
const replicationTick = time.Second

// UnderReplicated lists segments with a replica that is down or no longer
// a voter (or, for an open segment, refuses appends on a full disk: its
// leader streams to it in vain), and segments with fewer replicas than
// their topic's factor asks for when enough voters are up. A full disk
// alone triggers no repair (the node is seen, so never gone long).
func (r *Rollover) UnderReplicated() []status.UnderReplicated {
	m, err := r.Cons.Membership()
	if err != nil {
		return nil
	}
	bad := func(id uint64) bool {
		return !slices.Contains(m.Voters, id) || !r.Cluster.AliveStrict(id) || r.Cluster.DiskFull(id)
	}
	var out []status.UnderReplicated
	for _, name := range r.replicas.suspects(r.FSM, len(m.Voters), bad) {
		if t, ok := r.FSM.Topic(name); ok {
			out = append(out, r.underReplicated(t, m.Voters)...)
		}
	}
	return out
}

// UnderReplicatedIn is UnderReplicated for one topic (STATE), without a
// copy of the whole cluster state.
func (r *Rollover) UnderReplicatedIn(topic string) []status.UnderReplicated {
	m, err := r.Cons.Membership()
	if err != nil {
		return nil
	}
	t, ok := r.FSM.Topic(topic)
	if !ok {
		return nil
	}
	return r.underReplicated(t, m.Voters)
}

func (r *Rollover) underReplicated(t metadata.Topic, voters []uint64) []status.UnderReplicated {
	rf := max(t.ReplicationFactor, 1)
	if rf <= 1 {
		return nil
	}
	var out []status.UnderReplicated
	for _, seg := range slices.Sorted(maps.Keys(t.Replicas)) {
		set := t.Replicas[seg]
		_, sealed := t.SealedSegments[seg]
		var missing []uint64
		for _, id := range set {
			if !slices.Contains(voters, id) || !r.Cluster.AliveStrict(id) || (!sealed && r.Cluster.DiskFull(id)) {
				missing = append(missing, id)
			}
		}
		short := len(set) < min(rf, len(voters))
		if len(missing) > 0 || short {
			out = append(out, status.UnderReplicated{Topic: t.Name, Segment: seg, Replicas: slices.Clone(set), Missing: missing, Sealed: sealed, Short: short})
		}
	}
	return out
}

type segRef struct {
	topic string
	seg   uint64
}

// replicationLoop, on the Raft leader, reports under-replication and
// re-replicates segments whose replica has been gone for
// ReplicaRepairTimeout.
func (r *Rollover) replicationLoop(ctx context.Context) {
	t := time.NewTicker(replicationTick)
	defer t.Stop()
	var lastReport string
	shortSince := map[segRef]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !r.Cons.IsLeader() {
			lastReport = ""
			clear(shortSince)
			continue
		}
		under := r.UnderReplicated()
		r.Metrics.UnderReplicatedSegments.Set(float64(len(under)))
		report := fmt.Sprint(under)
		if report != lastReport {
			lastReport = report
			if len(under) > 0 {
				r.Logger.Warn("Segments under-replicated", "count", len(under), "segments", report)
			} else {
				r.Logger.Info("All segments fully replicated")
			}
		}
		// A set is repaired for being short only once it has been short
		// for FailureTimeout: a node that just stopped cleanly still looks
		// alive for that long (no churn towards it), while a node that
		// came back is taken into a full set soon after.
		now := time.Now()
		next := make(map[segRef]time.Time, len(under))
		for i, u := range under {
			if !u.Short {
				continue
			}
			k := segRef{u.Topic, u.Segment}
			since, ok := shortSince[k]
			if !ok {
				since = now
			}
			next[k] = since
			under[i].Short = now.Sub(since) >= r.cfg.FailureTimeout
		}
		shortSince = next
		if len(under) > 0 {
			r.repairOne(ctx, under)
		}
	}
}

// goneLong reports a replica gone for ReplicaRepairTimeout (or no longer a
// voter).
func (r *Rollover) goneLong(voters []uint64, id uint64) bool {
	if !slices.Contains(voters, id) {
		return true
	}
	if seen, ok := r.Cluster.LastSeen(id); ok {
		return time.Since(seen) > r.cfg.ReplicaRepairTimeout
	}
	since := r.Cluster.LeaderSince()
	return !since.IsZero() && time.Since(since) > r.cfg.ReplicaRepairTimeout
}

// repairOne re-replicates one sealed segment whose missing replica has
// been gone longer than ReplicaRepairTimeout to a live voter outside its
// set, or rolls an open one over to a better set.
func (r *Rollover) repairOne(ctx context.Context, under []status.UnderReplicated) {
	m, err := r.Cons.Membership()
	if err != nil {
		return
	}
	for _, u := range under {
		if !u.Sealed {
			if r.rollUnderReplicated(ctx, u, m.Voters) {
				return
			}
			continue
		}
		var gone uint64
		for _, id := range u.Missing {
			if r.goneLong(m.Voters, id) {
				gone = id
				break
			}
		}
		if gone == 0 && !u.Short {
			continue
		}
		var target uint64
		for _, id := range m.Voters {
			if !slices.Contains(u.Replicas, id) && r.Cluster.AliveStrict(id) {
				target = id
				break
			}
		}
		if target == 0 && gone == 0 {
			continue // short, but no node to add
		}
		newSet := slices.DeleteFunc(slices.Clone(u.Replicas), func(id uint64) bool { return id == gone })
		if target != 0 {
			t, _ := r.FSM.Topic(u.Topic)
			count := t.SealedSegments[u.Segment]
			pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			_, err := r.Peer(target).ReplicaPull(pctx, u.Topic, u.Segment, count, newSet)
			cancel()
			if err != nil {
				r.Logger.Warn("re-replication failed; will retry", "topic", u.Topic, "segment", u.Segment, "target", target, "err", err)
				return
			}
			newSet = append(newSet, target)
		} else if len(newSet) == 0 {
			continue
		} else if slices.Contains(m.Voters, gone) {
			// No spare node: keep waiting for the member to return.
			continue
		}
		res, err := r.Cons.Propose(ctx, metadata.SetReplicas{Topic: u.Topic, Segment: u.Segment, Replicas: newSet})
		if err == nil {
			err = res.Err
		}
		if err != nil {
			r.Logger.Error("Raft consensus failed", "op", "set_replicas", "topic", u.Topic, "segment", u.Segment, "err", err)
			return
		}
		r.Logger.Warn("segment re-replicated", "topic", u.Topic, "segment", u.Segment, "lost_replica", gone, "new_replica", target, "replicas", newSet)
		return // one segment per tick: rate limit
	}
}

// rollUnderReplicated rolls an open segment over early when one of its
// followers has been gone for ReplicaRepairTimeout and a new replica set
// would have more live members: the segment is fenced at its exact count
// (once the ack quorum holds it) and the next one opens on live nodes.
// It reports whether it acted.
func (r *Rollover) rollUnderReplicated(ctx context.Context, u status.UnderReplicated, voters []uint64) bool {
	rt, ok := r.FSM.Route(u.Topic)
	if !ok || rt.Segment != u.Segment || !r.Cluster.Alive(rt.Leader) {
		return false // rolled already, or the leader's failover handles it
	}
	if !u.Short && !slices.ContainsFunc(u.Missing, func(id uint64) bool { return r.goneLong(voters, id) }) {
		return false
	}
	var live []uint64
	for _, id := range voters {
		if r.Cluster.AliveStrict(id) {
			live = append(live, id)
		}
	}
	next := placement.NextLeader(live, rt.Leader)
	if len(r.nextReplicas(u.Topic, next, live)) <= len(u.Replicas)-len(u.Missing) {
		return false // no better set available: keep waiting
	}
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	count, fenced, err := r.Peer(rt.Leader).Fence(tctx, u.Topic, rt.Segment, 0)
	if err != nil || !fenced {
		r.Logger.Warn("early rollover of an under-replicated segment: fence failed", "topic", u.Topic, "segment", rt.Segment, "err", err)
		return false
	}
	if err := r.sealAndOpen(tctx, seal{op: "rollover", topic: u.Topic, seg: rt.Segment, count: count, next: next, live: live, fencedOn: rt.Leader, start: start}); err != nil {
		return true
	}
	r.Logger.Warn("rolled an under-replicated open segment over to a new replica set", "topic", u.Topic, "sealed_segment", rt.Segment, "entries", count, "missing", u.Missing, "next_leader", next, "replicas", r.nextReplicas(u.Topic, next, live))
	return true
}
