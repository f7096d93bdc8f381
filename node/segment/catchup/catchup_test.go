package catchup

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/metadata"
)

type fakeStore struct {
	mu     sync.Mutex
	have   map[engine.SegmentID]uint64
	sealed map[engine.SegmentID]bool
	stats  int
}

func (s *fakeStore) Stat(_ context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats++
	n, ok := s.have[id]
	if !ok {
		return engine.SegmentInfo{}, engine.ErrNotFound
	}
	return engine.SegmentInfo{ID: id, Entries: n, Sealed: s.sealed[id]}, nil
}

func (s *fakeStore) Seal(_ context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealed[id] = true
	return engine.SegmentInfo{ID: id, Entries: s.have[id], Sealed: true}, nil
}

func apply(t *testing.T, f *metadata.FSM, c metadata.Command) {
	t.Helper()
	if r := f.ApplyCommand(c); r.Err != nil {
		t.Fatal(r.Err)
	}
}

func TestCatcherPullsMissingSealsWholeAndThenIdles(t *testing.T) {
	f := metadata.NewFSM()
	apply(t, f, metadata.CreateTopic{Topic: "a", Leader: 1, Replicas: []uint64{1, 2, 3}})
	apply(t, f, metadata.CreateTopic{Topic: "b", Leader: 1, Replicas: []uint64{1, 3}})
	apply(t, f, metadata.Rollover{Topic: "a", Segment: 1, Count: 5, NextLeader: 2, NextReplicas: []uint64{2, 3, 1}})
	apply(t, f, metadata.Rollover{Topic: "b", Segment: 1, Count: 4, NextLeader: 3, NextReplicas: []uint64{3, 1}})

	idA := engine.SegmentID{Topic: "a", Segment: 1}
	st := &fakeStore{have: map[engine.SegmentID]uint64{idA: 3}, sealed: map[engine.SegmentID]bool{}}
	var pulls []engine.SegmentID
	c := &Catcher{FSM: f, Store: st, Self: 2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Pull: func(_ context.Context, topic string, seg, count uint64, sources []uint64) (uint64, error) {
			id := engine.SegmentID{Topic: topic, Segment: seg}
			pulls = append(pulls, id)
			st.mu.Lock()
			st.have[id], st.sealed[id] = count, true
			st.mu.Unlock()
			return count, nil
		}}

	c.Pass(t.Context())
	if len(pulls) != 1 || pulls[0] != idA {
		t.Fatalf("first pass pulled %v, want [a/1] (b/1 is not replicated on node 2)", pulls)
	}
	stats := st.stats
	c.Pass(t.Context())
	if len(pulls) != 1 || st.stats != stats {
		t.Fatalf("a pass with nothing pending pulled %v and made %d Stat calls", pulls, st.stats-stats)
	}

	// A new sealed segment of a that node 2 holds in part is found from
	// the change log; the complete one is not looked at again.
	apply(t, f, metadata.Rollover{Topic: "a", Segment: 2, Count: 2, NextLeader: 3, NextReplicas: []uint64{3, 1, 2}})
	idA2 := engine.SegmentID{Topic: "a", Segment: 2}
	st.mu.Lock()
	st.have[idA2] = 2
	st.mu.Unlock()
	stats = st.stats
	c.Pass(t.Context())
	if len(pulls) != 1 || !st.sealed[idA2] || st.stats-stats != 1 {
		t.Fatalf("after a rollover: pulls %v, a/2 sealed %v, Stat calls %d (want 1)", pulls, st.sealed[idA2], st.stats-stats)
	}

	// Deleting the topic drops its state.
	apply(t, f, metadata.DeleteTopic{Topic: "a"})
	c.Pass(t.Context())
	if len(c.pending) != 0 || len(c.done) != 0 {
		t.Fatalf("state kept after the topic was deleted: pending %v done %v", c.pending, c.done)
	}
}
