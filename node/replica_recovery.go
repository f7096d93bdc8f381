package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/metadata"
)

// Failure recovery, reads from replicas, catch-up and re-replication of
// replicated segments (issue 4).

// chooseReplicas picks a segment's replica set: the leader first, then the
// next live voters in id order after it (wrapping round), rf members at
// most.
func chooseReplicas(leader uint64, live []uint64, rf int) []uint64 {
	v := slices.Clone(live)
	if !slices.Contains(v, leader) {
		v = append(v, leader)
	}
	slices.Sort(v)
	idx := slices.Index(v, leader)
	out := []uint64{leader}
	for i := 1; len(out) < rf && i < len(v); i++ {
		out = append(out, v[(idx+i)%len(v)])
	}
	return out
}

// topicRF is a topic's replication factor (0 for topics created before
// replication means 1).
func topicRF(t metadata.Topic) int { return max(t.ReplicationFactor, 1) }

// replicasForNext returns the replica set for a topic's next segment led by
// leader, or nil when the topic is unreplicated.
func (n *Node) replicasForNext(topic string, leader uint64, live []uint64) []uint64 {
	t, ok := n.fsm.Topic(topic)
	if !ok || topicRF(t) <= 1 {
		return nil
	}
	return chooseReplicas(leader, live, topicRF(t))
}

// readSegmentAny reads a sealed segment from any replica that has the
// entries (this node first, then live members, then the others); an open
// segment is read from its leader.
func (n *Node) readSegmentAny(ctx context.Context, holder uint64, sealed bool, topic string, seg, off uint64, max int) ([][]byte, error) {
	if !sealed {
		return n.readSegment(ctx, holder, topic, seg, off, max)
	}
	set, _, _ := n.fsm.SegmentReplicas(topic, seg)
	peers := n.peers.snapshot()
	cands := make([]uint64, 0, len(set)+1)
	if slices.Contains(set, n.id) {
		cands = append(cands, n.id)
	}
	for _, live := range []bool{true, false} {
		for _, id := range set {
			if id != n.id && n.alive(id, peers) == live {
				cands = append(cands, id)
			}
		}
	}
	if !slices.Contains(cands, holder) {
		cands = append(cands, holder)
	}
	var errs []error
	for _, id := range cands {
		entries, err := n.readSegment(ctx, id, topic, seg, off, max)
		if err == nil && len(entries) > 0 {
			return entries, nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", id, err))
		}
	}
	return nil, errors.Join(errs...)
}

// recoverSegment replaces a dead leader of a replicated open segment (Raft
// leader only): fence the surviving replicas at a higher epoch, seal at the
// highest count a responder holds, bring lagging responders up to it, and
// open the next segment on a live node.
//
// Why the highest count of at least (set size - ack quorum + 1)
// responders covers every acknowledged entry: an entry is acknowledged
// only once ack quorum members hold it, and every member holds a prefix of
// the leader's entries. Any ack-quorum-sized group and any group of
// size - ack + 1 members share at least one member, so some responder
// holds every acknowledged entry, and the highest responder count is at
// least every acknowledged offset. The fence comes first, so no responder
// acknowledges anything after reporting its count.
func (n *Node) recoverSegment(ctx context.Context, topic string, r metadata.Route, live []uint64) error {
	set, ack, ok := n.fsm.SegmentReplicas(topic, r.Segment)
	if !ok {
		return fmt.Errorf("recover: unknown segment")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	need := len(set) - ack + 1
	epoch := max(r.Epoch, 1) + 1
	start := time.Now()

	type answer struct {
		id    uint64
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
			c, err := n.fenceReplica(fctx, id, topic, r.Segment, epoch)
			answers[i] = answer{id: id, count: c, err: err}
		}()
	}
	wg.Wait()
	var resp []answer
	for _, a := range answers {
		if a.err == nil {
			resp = append(resp, a)
		}
	}
	if len(resp) < need {
		return fmt.Errorf("recovery needs %d of replicas %v to answer the fence, %d did: %w", need, set, len(resp), ErrSegmentUnavailable)
	}
	// Highest count; prefer a source other than the old leader (its reads
	// of the open segment are bounded by what it saw confirmed).
	sort.SliceStable(resp, func(i, j int) bool { return resp[i].count > resp[j].count })
	seal := resp[0].count
	src := resp[0].id
	for _, a := range resp {
		if a.count == seal && a.id != r.Leader {
			src = a.id
			break
		}
	}
	for _, a := range resp {
		if a.count >= seal || a.id == r.Leader {
			continue
		}
		// Bounded: a far-behind survivor finishes through catch-up after
		// the seal instead of delaying the failover.
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		err := n.copyRange(cctx, src, a.id, topic, r.Segment, epoch, a.count, seal)
		ccancel()
		if err != nil {
			// The catch-up loop finishes the copy later; the sealed count
			// is already held by src.
			n.logger.Warn("recovery: copying to a lagging replica failed", "topic", topic, "segment", r.Segment, "replica", a.id, "err", err)
		}
	}
	next := nextLeader(live, r.Leader)
	cmd := metadata.Rollover{Topic: topic, Segment: r.Segment, Count: seal, NextLeader: next, NextReplicas: n.replicasForNext(topic, next, live)}
	res, err := n.cons.Propose(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	n.m.ObserveRollover(start, err)
	if err != nil {
		n.logger.Error("Raft consensus failed", "op", "failover", "topic", topic, "segment", r.Segment, "err", err)
		return err
	}
	counts := make(map[uint64]uint64, len(resp))
	for _, a := range resp {
		counts[a.id] = a.count
	}
	n.logger.Warn("segment leader down: fenced the replicas, sealed the segment at the highest replica count and moved the topic",
		"topic", topic, "segment", r.Segment, "dead_leader", r.Leader, "entries", seal, "replica_counts", fmt.Sprint(counts), "epoch", epoch, "next_leader", next, "took", time.Since(start).String())
	return nil
}

// copyRange copies entries [from, to) of a segment from node src to node
// dst (either may be this node) at epoch.
func (n *Node) copyRange(ctx context.Context, src, dst uint64, topic string, seg, epoch, from, to uint64) error {
	for from < to {
		want := int(min(to-from, replMaxEntries))
		rctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		var (
			entries [][]byte
			err     error
		)
		if src == n.id {
			entries, err = n.store.Read(rctx, engine.SegmentID{Topic: topic, Segment: seg}, from, want, replMaxBytes)
		} else {
			entries, err = n.readSegment(rctx, src, topic, seg, from, want)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("read from node %d: %w", src, err)
		}
		if len(entries) == 0 {
			return fmt.Errorf("node %d returned no entries at offset %d", src, from)
		}
		actx, cancel := context.WithTimeout(ctx, rpcTimeout)
		c, err := n.appendReplica(actx, dst, topic, seg, epoch, from, entries)
		cancel()
		if err != nil {
			return fmt.Errorf("append to node %d: %w", dst, err)
		}
		if c <= from {
			return fmt.Errorf("node %d did not advance at offset %d", dst, from)
		}
		from = c
	}
	return nil
}

// pullSegment copies a sealed segment here from the other members until it
// holds count entries, then seals it locally.
func (n *Node) pullSegment(ctx context.Context, topic string, seg, count uint64, sources []uint64) (uint64, error) {
	id := engine.SegmentID{Topic: topic, Segment: seg}
	have, err := n.segmentCount(id)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, src := range sources {
		if have >= count {
			break
		}
		if src == n.id {
			continue
		}
		if err := n.copyRange(ctx, src, n.id, topic, seg, 0, have, count); err != nil {
			errs = append(errs, err)
		}
		if have, err = n.segmentCount(id); err != nil {
			return 0, err
		}
	}
	if have < count {
		return have, fmt.Errorf("pull %s: %d of %d entries: %w", id, have, count, errors.Join(errs...))
	}
	if _, err := n.store.Seal(ctx, id); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return have, fmt.Errorf("seal %s: %w", id, err)
	}
	return have, nil
}

func (n *Node) handleReplicaPullRPC(ctx context.Context, payload []byte) ([]byte, error) {
	d := dec{b: payload}
	topic := d.str()
	seg, count := d.u64(), d.u64()
	k := d.u32()
	var sources []uint64
	for range k {
		sources = append(sources, d.u64())
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	c, err := n.pullSegment(ctx, topic, seg, count, sources)
	if err != nil {
		return nil, err
	}
	var e enc
	e.u64(c)
	return e.b, nil
}

// underReplicated is one segment with fewer live replicas than its set.
type underReplicated struct {
	Topic    string   `json:"topic"`
	Segment  uint64   `json:"segment"`
	Replicas []uint64 `json:"replicas"`
	Missing  []uint64 `json:"missing"`
	Sealed   bool     `json:"sealed"`
	// Short: the set has fewer members than the topic's factor although
	// enough voters exist now (e.g. created before the others joined).
	Short bool `json:"short,omitempty"`
}

// underReplicatedSegments lists segments with a replica that is down or no
// longer a voter, and segments with fewer replicas than their topic's
// factor asks for when enough voters are up.
func (n *Node) underReplicatedSegments() []underReplicated {
	m, err := n.cons.Membership()
	if err != nil {
		return nil
	}
	peers := n.peers.snapshot()
	st := n.fsm.State()
	var out []underReplicated
	names := make([]string, 0, len(st.Topics))
	for name := range st.Topics {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t := st.Topics[name]
		if topicRF(*t) <= 1 {
			continue
		}
		segs := make([]uint64, 0, len(t.Replicas))
		for seg := range t.Replicas {
			segs = append(segs, seg)
		}
		slices.Sort(segs)
		for _, seg := range segs {
			set := t.Replicas[seg]
			var missing []uint64
			for _, id := range set {
				if !slices.Contains(m.Voters, id) || !n.aliveStrict(id, peers) {
					missing = append(missing, id)
				}
			}
			short := len(set) < min(topicRF(*t), len(m.Voters))
			if len(missing) > 0 || short {
				_, sealed := t.SealedSegments[seg]
				out = append(out, underReplicated{Topic: name, Segment: seg, Replicas: slices.Clone(set), Missing: missing, Sealed: sealed, Short: short})
			}
		}
	}
	return out
}

// aliveStrict is alive without the benefit of the doubt for nodes never
// heard from (used for visibility, not for failover decisions).
func (n *Node) aliveStrict(id uint64, peers map[uint64]peerProgress) bool {
	if id == n.id {
		return true
	}
	p, ok := peers[id]
	return ok && time.Since(p.Seen) <= n.cfg.FailureTimeout
}

// replicationLoop runs on every node: it catches up this node's replicas
// of sealed segments and, on the Raft leader, re-replicates sealed
// segments whose replica has been gone for ReplicaRepairTimeout and
// reports under-replication.
func (n *Node) replicationLoop(ctx context.Context) {
	t := time.NewTicker(replicationTick)
	defer t.Stop()
	var lastReport string
	shortSince := map[segKey]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.catchUpReplicas(ctx)
		if !n.cons.IsLeader() {
			lastReport = ""
			continue
		}
		under := n.underReplicatedSegments()
		n.m.UnderReplicatedSegments.Set(float64(len(under)))
		report := fmt.Sprint(under)
		if report != lastReport {
			lastReport = report
			if len(under) > 0 {
				n.logger.Warn("Segments under-replicated", "count", len(under), "segments", report)
			} else {
				n.logger.Info("All segments fully replicated")
			}
		}
		// A set is repaired for being short only once it has been short
		// for FailureTimeout: a node that just stopped cleanly still looks
		// alive for that long (no churn towards it), while a node that
		// came back is taken into a full set soon after.
		now := time.Now()
		next := make(map[segKey]time.Time, len(under))
		for i, u := range under {
			if !u.Short {
				continue
			}
			k := segKey{u.Topic, u.Segment}
			since, ok := shortSince[k]
			if !ok {
				since = now
			}
			next[k] = since
			under[i].Short = now.Sub(since) >= n.cfg.FailureTimeout
		}
		shortSince = next
		if len(under) > 0 {
			n.repairOne(ctx, under)
		}
	}
}

const replicationTick = time.Second

// catchUpReplicas brings this node's replicas of sealed segments up to
// their sealed count (a node that was down or lagging at the seal) and
// seals them locally. One segment per pass keeps it rate-limited.
func (n *Node) catchUpReplicas(ctx context.Context) {
	st := n.fsm.State()
	s := &n.repl
	for name, t := range st.Topics {
		for seg, set := range t.Replicas {
			count, sealed := t.SealedSegments[seg]
			if !sealed || !slices.Contains(set, n.id) {
				continue
			}
			k := segKey{name, seg}
			s.mu.Lock()
			done := s.complete[k]
			s.mu.Unlock()
			if done {
				continue
			}
			id := engine.SegmentID{Topic: name, Segment: seg}
			info, err := n.store.Stat(ctx, id)
			if err != nil && !errors.Is(err, engine.ErrNotFound) {
				continue
			}
			if info.Entries >= count {
				if !info.Sealed && info.Entries > 0 {
					_, _ = n.store.Seal(ctx, id)
				}
				s.mu.Lock()
				if s.complete == nil {
					s.complete = map[segKey]bool{}
				}
				s.complete[k] = true
				s.mu.Unlock()
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			got, err := n.pullSegment(pctx, name, seg, count, set)
			cancel()
			if err != nil {
				n.logger.Warn("replica catch-up failed; will retry", "topic", name, "segment", seg, "have", got, "sealed_count", count, "err", err)
			} else {
				n.logger.Info("replica caught up", "topic", name, "segment", seg, "entries", got)
			}
			return
		}
	}
}

// repairOne re-replicates one sealed segment whose missing replica has
// been gone longer than ReplicaRepairTimeout (or is no longer a voter) to
// a live voter outside its set.
func (n *Node) repairOne(ctx context.Context, under []underReplicated) {
	m, err := n.cons.Membership()
	if err != nil {
		return
	}
	peers := n.peers.snapshot()
	n.peers.mu.Lock()
	leaderSince := n.peers.leaderSince
	n.peers.mu.Unlock()
	goneLong := func(id uint64) bool {
		if !slices.Contains(m.Voters, id) {
			return true
		}
		if p, ok := peers[id]; ok {
			return time.Since(p.Seen) > n.cfg.ReplicaRepairTimeout
		}
		return !leaderSince.IsZero() && time.Since(leaderSince) > n.cfg.ReplicaRepairTimeout
	}
	for _, u := range under {
		if !u.Sealed {
			if n.rollUnderReplicated(ctx, u, goneLong, m.Voters, peers) {
				return
			}
			continue
		}
		var gone uint64
		for _, id := range u.Missing {
			if goneLong(id) {
				gone = id
				break
			}
		}
		if gone == 0 && !u.Short {
			continue
		}
		var target uint64
		for _, id := range m.Voters {
			if !slices.Contains(u.Replicas, id) && n.aliveStrict(id, peers) {
				target = id
				break
			}
		}
		if target == 0 && gone == 0 {
			continue // short, but no node to add
		}
		newSet := slices.DeleteFunc(slices.Clone(u.Replicas), func(id uint64) bool { return id == gone })
		if target != 0 {
			t, _ := n.fsm.Topic(u.Topic)
			count := t.SealedSegments[u.Segment]
			if err := n.pullTo(ctx, target, u.Topic, u.Segment, count, newSet); err != nil {
				n.logger.Warn("re-replication failed; will retry", "topic", u.Topic, "segment", u.Segment, "target", target, "err", err)
				return
			}
			newSet = append(newSet, target)
		} else if len(newSet) == 0 {
			continue
		} else if slices.Contains(m.Voters, gone) {
			// No spare node: keep waiting for the member to return.
			continue
		}
		res, err := n.cons.Propose(ctx, metadata.SetReplicas{Topic: u.Topic, Segment: u.Segment, Replicas: newSet})
		if err == nil {
			err = res.Err
		}
		if err != nil {
			n.logger.Error("Raft consensus failed", "op", "set_replicas", "topic", u.Topic, "segment", u.Segment, "err", err)
			return
		}
		n.logger.Warn("segment re-replicated", "topic", u.Topic, "segment", u.Segment, "lost_replica", gone, "new_replica", target, "replicas", newSet)
		return // one segment per tick: rate limit
	}
}

// pullTo asks node target to copy a sealed segment from sources.
func (n *Node) pullTo(ctx context.Context, target uint64, topic string, seg, count uint64, sources []uint64) error {
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if target == n.id {
		_, err := n.pullSegment(pctx, topic, seg, count, sources)
		return err
	}
	var e enc
	e.str(topic)
	e.u64(seg)
	e.u64(count)
	e.u32(uint32(len(sources)))
	for _, s := range sources {
		e.u64(s)
	}
	addr, err := n.nodeAddr(target)
	if err != nil {
		return err
	}
	resp, err := n.pool.Call(pctx, addr, methodReplicaPull, e.b)
	if err != nil {
		return fromRPC(err)
	}
	d := dec{b: resp}
	got := d.u64()
	if err := d.done(); err != nil {
		return err
	}
	if got < count {
		return fmt.Errorf("node %d holds %d of %d entries", target, got, count)
	}
	return nil
}

// rollUnderReplicated rolls an open segment over early when one of its
// followers has been gone for ReplicaRepairTimeout and a new replica set
// would have more live members: the segment is fenced at its exact count
// (once the ack quorum holds it) and the next one opens on live nodes.
// It reports whether it acted.
func (n *Node) rollUnderReplicated(ctx context.Context, u underReplicated, goneLong func(uint64) bool, voters []uint64, peers map[uint64]peerProgress) bool {
	r, ok := n.fsm.Route(u.Topic)
	if !ok || r.Segment != u.Segment || !n.alive(r.Leader, peers) {
		return false // rolled already, or the leader's failover handles it
	}
	if !u.Short && !slices.ContainsFunc(u.Missing, goneLong) {
		return false
	}
	var live []uint64
	for _, id := range voters {
		if n.aliveStrict(id, peers) {
			live = append(live, id)
		}
	}
	next := nextLeader(live, r.Leader)
	set := n.replicasForNext(u.Topic, next, live)
	if len(set) <= len(u.Replicas)-len(u.Missing) {
		return false // no better set available: keep waiting
	}
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var e enc
	e.str(u.Topic)
	e.u64(r.Segment)
	e.u64(0)
	var (
		count  uint64
		fenced bool
		err    error
	)
	if r.Leader == n.id {
		count, fenced, err = n.fenceLocal(tctx, u.Topic, r.Segment, 0)
	} else {
		var resp []byte
		resp, err = n.call(tctx, r.Leader, methodFence, e.b)
		if err == nil && len(resp) == 9 {
			d := dec{b: resp[1:]}
			count, fenced = d.u64(), resp[0] == 1
		} else if err == nil {
			err = errShortPayload
		}
	}
	if err != nil || !fenced {
		n.logger.Warn("early rollover of an under-replicated segment: fence failed", "topic", u.Topic, "segment", r.Segment, "err", err)
		return false
	}
	res, err := n.cons.Propose(tctx, metadata.Rollover{Topic: u.Topic, Segment: r.Segment, Count: count, NextLeader: next, NextReplicas: set})
	if err == nil {
		err = res.Err
	}
	n.m.ObserveRollover(start, err)
	if err != nil {
		n.logger.Error("Raft consensus failed", "op", "rollover", "topic", u.Topic, "segment", r.Segment, "err", err)
		if res.Err != nil {
			uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = n.unfence(uctx, r.Leader, u.Topic, r.Segment)
			ucancel()
		}
		return true
	}
	n.logger.Warn("rolled an under-replicated open segment over to a new replica set", "topic", u.Topic, "sealed_segment", r.Segment, "entries", count, "missing", u.Missing, "next_leader", next, "replicas", set)
	return true
}
