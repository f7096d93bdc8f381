package badgerstore

import (
	"errors"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// TestFailedAppendFailsQueuedAppends makes one queued append fail while two
// more appends of the same segment are queued behind it (built on the
// offsets it would have taken). Those must fail too, without writing: a
// commit past the hole would leave entries the count says exist but which
// do not. The segment then continues at the last committed offset.
func TestFailedAppendFailsQueuedAppends(t *testing.T) {
	s := openTest(t, t.TempDir(), engine.DurabilityNone)
	ctx := t.Context()
	id := engine.SegmentID{Topic: "pipe", Segment: 0}
	head := bigBatch('h', 5)
	if _, err := s.Append(ctx, id, head); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	s.commitFault = func(r *commitReq) error {
		if r.id == id && r.prev == 5 {
			<-release // hold the committer so the next appends queue up
			return errInjected
		}
		return nil
	}
	results := make(chan error, 3)
	go func() {
		_, err := s.Append(ctx, id, [][]byte{[]byte("a")})
		results <- err
	}()
	waitFor(t, "first append to reach the committer", func() bool { return len(s.commitCh) == 0 && inflight(s, id) == 1 })
	for range 2 {
		go func() {
			_, err := s.Append(ctx, id, [][]byte{[]byte("b")})
			results <- err
		}()
	}
	waitFor(t, "two appends queued behind it", func() bool { return len(s.commitCh) == 2 })
	close(release)
	var injected, stale int
	for range 3 {
		err := <-results
		switch {
		case errors.Is(err, errInjected):
			injected++
		case errors.Is(err, errStale) && errors.Is(err, engine.ErrUnavailable):
			stale++
		default:
			t.Fatalf("queued append returned %v, want the injected failure or a stale ErrUnavailable", err)
		}
	}
	if injected != 1 || stale != 2 {
		t.Fatalf("%d injected and %d stale failures, want 1 and 2", injected, stale)
	}
	s.commitFault = nil
	if info, err := s.Stat(ctx, id); err != nil || info.Entries != 5 {
		t.Fatalf("stat after failures = %+v, %v; want 5 entries", info, err)
	}
	if first, err := s.Append(ctx, id, [][]byte{[]byte("c")}); err != nil || first != 5 {
		t.Fatalf("append after failures = %d, %v; want 5", first, err)
	}
	sameEntries(t, "after failures", readAllT(t, s, id), append(head, []byte("c")))
}

// inflight reports how many appends of id are reserved but unanswered.
func inflight(s *Store, id engine.SegmentID) int {
	s.segsMu.Lock()
	st := s.segs[id]
	s.segsMu.Unlock()
	if st == nil {
		return 0
	}
	// The committer is blocked in commitFault, so the only reserved append
	// is the one it holds; the count is next - committed (5).
	st.mu.Lock()
	defer st.mu.Unlock()
	return int(st.next.Entries - 5)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
