package segment

import (
	"context"
	"fmt"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/segment/replicate"
	"github.com/walrus-go/walrus/node/wire"
)

// replicatorFor returns the replicator of an open segment this node leads,
// creating it when the segment has more than one replica. It returns nil
// for unreplicated segments, or, before an append (forAppend), an error
// for one this node must not append to (see emptyInherited).
func (m *Manager) replicatorFor(topic string, seg uint64, forAppend bool) (*replicate.Replicator, error) {
	k := segKey{Topic: topic, Segment: seg}
	m.repMu.Lock()
	defer m.repMu.Unlock()
	if r, ok := m.reps[k]; ok {
		return r, nil
	}
	if refuse, ok := m.unreplicated[k]; ok {
		return nil, refuse
	}
	t, ok := m.FSM.Topic(topic)
	if !ok {
		return nil, nil
	}
	set := t.SegmentReplicas(seg)
	if len(set) <= 1 || set[0] != m.cfg.Self {
		if !forAppend {
			return nil, nil
		}
		// A segment's set never changes while it is open: remember.
		var refuse error
		if len(set) <= 1 && m.emptyInherited(t, k) {
			refuse = fmt.Errorf("topic %s segment %d: opened before this node restarted, and its store holds none of it (a lost disk?): %w", topic, seg, wire.ErrFenced)
			m.stepDown(topic, seg)
		}
		m.unreplicated[k] = refuse
		return nil, refuse
	}
	if _, sealed := t.SealedSegments[seg]; sealed {
		if forAppend {
			// Never append unreplicated to a segment the cluster sealed.
			return nil, &wire.NotLeaderError{Topic: topic, Segment: t.CurrentSegment, Leader: t.LeaderNode}
		}
		return nil, nil
	}
	epoch, err := m.epochs.Get(k)
	if err != nil {
		return nil, err
	}
	if epoch > 1 {
		// Fenced here by a recovery: this node must not lead it again. If
		// that recovery did not move the segment, the Raft leader must
		// run it again.
		m.stepDown(topic, seg)
		return nil, fmt.Errorf("topic %s segment %d: fenced at epoch %d: %w", topic, seg, epoch, wire.ErrFenced)
	}
	id := engine.SegmentID{Topic: topic, Segment: seg}
	local, err := m.count(context.Background(), id)
	if err != nil {
		return nil, err
	}
	boot := m.lease.BootIndex()
	var r *replicate.Replicator
	r = replicate.New(replicate.Config{
		ID:             id,
		Followers:      set[1:],
		AckQuorum:      t.SegmentAckQuorum(seg),
		Local:          local,
		Confirmed:      m.retiredLAC[k],
		PendingTimeout: max(2*m.cfg.FailureTimeout, 2*time.Second),
		Peer:           func(id uint64) replicate.Follower { return m.Peer(id) },
		Store:          m.Store,
		Memory:         &m.replMemory,
		// A segment opened before this process proved contact may have
		// lost entries here (a wiped disk, an unsynced tail).
		Inherited: boot == 0 || t.OpenedAt == 0 || t.OpenedAt <= boot,
		Sealed: func() (uint64, bool) {
			_, count, sealed, _ := m.FSM.SegmentInfo(topic, seg)
			return count, sealed
		},
		Stop:    m.repStop,
		Done:    func() { m.dropReplicator(k, r) },
		Deposed: func() { m.stepDown(topic, seg) },
		Logger:  m.Logger,
	})
	m.reps[k] = r
	delete(m.retiredLAC, k)
	if m.repClosed {
		// No goroutines once the replicators were stopped.
		r.Fail(false)
		return r, nil
	}
	r.Start()
	m.Logger.Debug("replicating segment", "topic", topic, "segment", seg, "replicas", set, "ack_quorum", t.SegmentAckQuorum(seg), "entries", local)
	return r, nil
}

func (m *Manager) replicator(topic string, seg uint64) *replicate.Replicator {
	m.repMu.Lock()
	defer m.repMu.Unlock()
	return m.reps[segKey{Topic: topic, Segment: seg}]
}

func (m *Manager) dropReplicator(k segKey, r *replicate.Replicator) {
	m.repMu.Lock()
	if m.reps[k] == r {
		delete(m.reps, k)
	}
	m.repMu.Unlock()
}

// emptyInherited reports an unreplicated segment that opened before this
// process started and of which the local store holds nothing: the store
// was lost (a wiped disk). Appending would put new entries where readers
// expect the lost ones, so the segment is handed back to be sealed and
// the topic moves on.
func (m *Manager) emptyInherited(t metadata.Topic, k segKey) bool {
	boot := m.lease.BootIndex()
	if boot != 0 && t.OpenedAt > boot {
		return false
	}
	c, err := m.count(context.Background(), engine.SegmentID{Topic: k.Topic, Segment: k.Segment})
	return err == nil && c == 0
}

// stopReplicatorFenced fails the replicator of k as fenced (this node was
// fenced by a recovery) and forgets it.
func (m *Manager) stopReplicatorFenced(k segKey) {
	m.repMu.Lock()
	r := m.reps[k]
	delete(m.reps, k)
	m.repMu.Unlock()
	if r != nil {
		r.Fail(true)
	}
}

// readLimit bounds reads of an open replicated segment led here to its
// last add confirmed, so a reader never sees an entry a failover could
// drop. ok is false when no bound applies.
func (m *Manager) readLimit(topic string, seg uint64) (uint64, bool) {
	if _, _, sealed, _ := m.FSM.SegmentInfo(topic, seg); sealed {
		return 0, false
	}
	r, _ := m.FSM.Route(topic)
	if r.Segment != seg || r.Leader != m.cfg.Self {
		return 0, false
	}
	k := segKey{Topic: topic, Segment: seg}
	m.repMu.Lock()
	_, live := m.reps[k]
	lac, retired := m.retiredLAC[k]
	m.repMu.Unlock()
	if !live && retired {
		// Its replicator retired idle, and every append makes a new one
		// first: the bound is what that one confirmed.
		return lac, true
	}
	rep, err := m.replicatorFor(topic, seg, false)
	if err != nil {
		return 0, true // fenced: nothing is confirmed from here
	}
	if rep == nil {
		return 0, false
	}
	if !live {
		// A replicator made for reading (after a restart) retires with the
		// topic's writer: make sure there is one to do it.
		if w, err := m.writer(topic); err == nil {
			m.release(w)
		}
	}
	return rep.ReadLimit(), true
}

// AwaitReplicated waits (bounded) until every follower of a replicated
// segment led here that is still streaming holds count entries.
func (m *Manager) AwaitReplicated(ctx context.Context, topic string, seg, count uint64) {
	if r := m.replicator(topic, seg); r != nil {
		r.AwaitFollowers(ctx, count)
	}
}

// Confirmed returns the count at which a segment led here may be sealed
// (see replicate.Replicator.Confirmed); an unreplicated segment returns
// count.
func (m *Manager) Confirmed(ctx context.Context, topic string, seg, count uint64) (uint64, error) {
	if set, _, _ := m.FSM.SegmentReplicas(topic, seg); len(set) <= 1 {
		return count, nil
	}
	r, err := m.replicatorFor(topic, seg, false)
	if err != nil {
		return 0, err
	}
	if r == nil {
		return count, nil
	}
	return r.Confirmed(ctx, count)
}
