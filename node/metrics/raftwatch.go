package metrics

import (
	"context"

	"github.com/hashicorp/raft"
)

// raftObservationBuffer bounds the observations queued for WatchRaft. The
// observer is non-blocking (raft must never wait on metrics), so a burst
// beyond this is dropped, which can only under-count elections.
const raftObservationBuffer = 64

// WatchRaft counts Raft events the scrape-time RaftStats cannot see
// between two scrapes: Elections (this node entering Candidate state) and
// LeaderChanges (this node learning of a leader, after an election or at
// start). It registers an observer on r and blocks until ctx is done, then
// deregisters it; run it in a goroutine the node owns:
//
//	n.goFunc(func() { n.m.WatchRaft(ctx, r) })
func (m *Metrics) WatchRaft(ctx context.Context, r *raft.Raft) { m.watchRaft(ctx, r, nil) }

// watchRaft is WatchRaft calling registered (if not nil) once the observer
// is in place, so tests can start an election only after that.
func (m *Metrics) watchRaft(ctx context.Context, r *raft.Raft, registered func()) {
	ch := make(chan raft.Observation, raftObservationBuffer)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.RaftState, raft.LeaderObservation:
			return true
		}
		return false
	})
	r.RegisterObserver(obs)
	defer r.DeregisterObserver(obs)
	if registered != nil {
		registered()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-ch:
			switch d := o.Data.(type) {
			case raft.RaftState:
				if d == raft.Candidate {
					m.Elections.Inc()
				}
			case raft.LeaderObservation:
				// raft clears the leader (empty id) on every state change
				// and sets it when one is known; count only the latter.
				if d.LeaderID != "" {
					m.LeaderChanges.Inc()
				}
			}
		}
	}
}
