package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/backends/memstore"
	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/wire"
)

// fakeFollower is an in-memory replica: it stores what it is sent at its
// next offset, and can be switched to fail or to answer fenced.
type fakeFollower struct {
	mu      sync.Mutex
	entries [][]byte
	down    bool
	fenced  bool
	// full refuses appends (not probes) as a replica on a full disk does.
	full    bool
	refused int
}

func (f *fakeFollower) apply(first uint64, entries [][]byte) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.fenced:
		return 0, fmt.Errorf("test: %w", wire.ErrReplicaFenced)
	case f.down:
		return 0, errors.New("test: follower down")
	case f.full && len(entries) > 0:
		f.refused++
		return uint64(len(f.entries)), &wire.DiskFullError{Node: 9, FreeBytes: 1 << 20, RequiredBytes: 256 << 20}
	}
	have := uint64(len(f.entries))
	if first > have {
		return have, &wire.ReplicaGapError{Count: have}
	}
	if skip := have - first; skip < uint64(len(entries)) {
		f.entries = append(f.entries, entries[skip:]...)
	}
	return uint64(len(f.entries)), nil
}

func (f *fakeFollower) set(down, fenced bool) {
	f.mu.Lock()
	f.down, f.fenced = down, fenced
	f.mu.Unlock()
}

func (f *fakeFollower) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.entries)
}

func (f *fakeFollower) ReplicaAppend(_ context.Context, _ string, _, _, first uint64, entries [][]byte) (uint64, error) {
	return f.apply(first, entries)
}

func (f *fakeFollower) ReplicaAppendAsync(_ string, _, _, first uint64, entries [][]byte, cb func(uint64, error)) {
	go func() { cb(f.apply(first, entries)) }()
}

type ackRecorder chan error

func (a ackRecorder) Ack(err error) { a <- err }

type harness struct {
	r         *Replicator
	store     *memstore.Store
	followers map[uint64]*fakeFollower
	id        engine.SegmentID
	stop      chan struct{}
	sealed    func() (uint64, bool)
	deposed   chan struct{}
}

func newHarness(t *testing.T, ack int, followers ...uint64) *harness {
	t.Helper()
	return newHarnessWith(t, ack, nil, followers...)
}

func newHarnessWith(t *testing.T, ack int, memory *Budget, followers ...uint64) *harness {
	t.Helper()
	return newHarnessDown(t, ack, memory, nil, followers...)
}

// newHarnessDown starts with the followers in down unreachable from the
// first probe on.
func newHarnessDown(t *testing.T, ack int, memory *Budget, down []uint64, followers ...uint64) *harness {
	t.Helper()
	return newHarnessSetup(t, ack, memory, func(h *harness) {
		for _, id := range down {
			h.followers[id].down = true
		}
	}, followers...)
}

// newHarnessSetup lets setup change the followers before the replicator
// starts (and may probe them).
func newHarnessSetup(t *testing.T, ack int, memory *Budget, setup func(*harness), followers ...uint64) *harness {
	t.Helper()
	h := &harness{store: memstore.New(), followers: map[uint64]*fakeFollower{}, id: engine.SegmentID{Topic: "t", Segment: 1}, stop: make(chan struct{}), deposed: make(chan struct{}, 1)}
	for _, id := range followers {
		h.followers[id] = &fakeFollower{}
	}
	if setup != nil {
		setup(h)
	}
	h.sealed = func() (uint64, bool) { return 0, false }
	h.r = New(Config{
		ID: h.id, Followers: followers, AckQuorum: ack, PendingTimeout: 5 * time.Second,
		Peer:      func(id uint64) Follower { return h.followers[id] },
		Store:     h.store,
		Memory:    memory,
		Inherited: true,
		Sealed:    func() (uint64, bool) { return h.sealed() },
		Stop:      h.stop,
		Done:      func() {},
		Deposed: func() {
			select {
			case h.deposed <- struct{}{}:
			default:
			}
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	h.r.Start()
	t.Cleanup(func() {
		close(h.stop)
		h.r.Fail(false)
		h.r.Wait()
	})
	return h
}

// appendBatch stores n entries locally and hands them to the replicator,
// as the topic writer does; it returns the ack channel.
func (h *harness) appendBatch(t *testing.T, n int) ackRecorder {
	t.Helper()
	entries := make([][]byte, n)
	for i := range entries {
		entries[i] = fmt.Appendf(nil, "e%d", i)
	}
	first, err := h.store.Append(context.Background(), h.id, entries)
	if err != nil {
		t.Fatal(err)
	}
	acks := make(ackRecorder, 1)
	h.r.Appended(first, entries, []Ack{acks})
	return acks
}

func waitAck(t *testing.T, a ackRecorder) error {
	t.Helper()
	select {
	case err := <-a:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no ack within 10 s")
		return nil
	}
}

func TestAckAfterQuorum(t *testing.T) {
	h := newHarness(t, 2, 2, 3)
	h.followers[3].set(true, false) // one follower down: quorum 2 still reachable
	if err := waitAck(t, h.appendBatch(t, 5)); err != nil {
		t.Fatalf("ack with one follower down: %v", err)
	}
	if got := h.followers[2].count(); got != 5 {
		t.Fatalf("follower 2 holds %d entries, want 5", got)
	}
	if lim := h.r.ReadLimit(); lim != 5 {
		t.Fatalf("read limit %d, want 5", lim)
	}
}

func TestNoAckWithoutQuorum(t *testing.T) {
	h := newHarness(t, 3, 2, 3)
	h.followers[3].set(true, false)
	a := h.appendBatch(t, 3)
	select {
	case err := <-a:
		t.Fatalf("acked (%v) with only 2 of 3 replicas", err)
	case <-time.After(300 * time.Millisecond):
	}
	// The follower comes back: the sender resyncs and the batch is acked.
	h.followers[3].set(false, false)
	if err := waitAck(t, a); err != nil {
		t.Fatalf("ack after the follower returned: %v", err)
	}
}

func TestFencedFollowerFailsPending(t *testing.T) {
	h := newHarness(t, 3, 2, 3)
	h.followers[3].set(false, true)
	if err := waitAck(t, h.appendBatch(t, 2)); !errors.Is(err, wire.ErrUnacked) {
		t.Fatalf("pending batch after a fence: %v, want ErrUnacked", err)
	}
	if err := h.r.Refuse(); !errors.Is(err, wire.ErrFenced) {
		t.Fatalf("Refuse after a fence: %v, want ErrFenced", err)
	}
	if _, err := h.r.Confirmed(context.Background(), 2); !errors.Is(err, wire.ErrFenced) {
		t.Fatalf("Confirmed after a fence: %v, want ErrFenced", err)
	}
}

// TestConfirmedCapsAtQuorum: a seal waits for the quorum, and when it does
// not come, seals at the confirmed count and fails what lies past it.
func TestConfirmedCapsAtQuorum(t *testing.T) {
	h := newHarness(t, 2, 2)
	if err := waitAck(t, h.appendBatch(t, 4)); err != nil {
		t.Fatal(err)
	}
	h.followers[2].set(true, false)
	late := h.appendBatch(t, 3)
	c, err := h.r.Confirmed(context.Background(), 7)
	if err != nil || c != 4 {
		t.Fatalf("Confirmed = %d, %v; want 4 (the quorum's count)", c, err)
	}
	if err := waitAck(t, late); !errors.Is(err, wire.ErrUnacked) {
		t.Fatalf("batch past the cap: %v, want ErrUnacked", err)
	}
	// The cap holds even if the follower catches up now.
	h.followers[2].set(false, false)
	if c, err := h.r.Confirmed(context.Background(), 7); err != nil || c != 4 {
		t.Fatalf("Confirmed after catch-up = %d, %v; want still 4", c, err)
	}
	h.r.Uncap()
	if c, err := h.r.Confirmed(context.Background(), 7); err != nil || c != 7 {
		t.Fatalf("Confirmed after Uncap = %d, %v; want 7", c, err)
	}
}

func TestAwaitFollowersAndPending(t *testing.T) {
	h := newHarness(t, 2, 2, 3)
	if err := waitAck(t, h.appendBatch(t, 6)); err != nil {
		t.Fatal(err)
	}
	h.r.AwaitFollowers(context.Background(), 6)
	for id, f := range h.followers {
		if f.count() != 6 {
			t.Fatalf("follower %d holds %d, want 6", id, f.count())
		}
	}
	if p, _ := h.r.Pending(); p != 0 {
		t.Fatalf("pending = %d after every ack", p)
	}
}

// TestFollowerAheadStepsDown: a follower holding more than the leader
// (the leader lost entries: a wiped disk) must not be written to, nothing
// more is acknowledged, and the leader asks to be replaced.
func TestFollowerAheadStepsDown(t *testing.T) {
	// Ahead before the replicator starts: set later, it raced with (and
	// could miss) the first probe.
	h := newHarnessSetup(t, 2, nil, func(h *harness) {
		h.followers[2].entries = [][]byte{[]byte("x"), []byte("y"), []byte("z")}
	}, 2)
	if err := waitAck(t, h.appendBatch(t, 1)); !errors.Is(err, wire.ErrUnacked) {
		t.Fatalf("append through a follower ahead of the leader: %v, want ErrUnacked", err)
	}
	select {
	case <-h.deposed:
	case <-time.After(10 * time.Second):
		t.Fatal("the leader did not step down")
	}
	if err := h.r.Refuse(); !errors.Is(err, wire.ErrFenced) {
		t.Fatalf("Refuse = %v, want ErrFenced", err)
	}
	if got := h.followers[2].count(); got != 3 {
		t.Fatalf("follower ahead was written to: %d entries", got)
	}
}

// TestMemoryBudget: past the node-wide budget, batches are not kept in
// memory and the senders read them back from the store; nothing is lost
// and the budget is given back.
func TestMemoryBudget(t *testing.T) {
	b := &Budget{Limit: 8}
	h := newHarnessWith(t, 3, b, 2, 3)
	for range 5 {
		if err := waitAck(t, h.appendBatch(t, 4)); err != nil {
			t.Fatal(err)
		}
	}
	for id, f := range h.followers {
		if f.count() != 20 {
			t.Fatalf("follower %d holds %d of 20", id, f.count())
		}
	}
	if used := b.Used(); used < 0 || used > b.Limit {
		t.Fatalf("budget used %d of %d", used, b.Limit)
	}
	h.r.Fail(false)
	if used := b.Used(); used != 0 {
		t.Fatalf("a stopped replicator still holds %d bytes", used)
	}
}

// TestFirstAppendWaitsForStartQuorum (issue 11, hole 1): before its first
// append a leader must hear from enough followers that one of them holds
// every acknowledged entry; with that follower unreachable it refuses
// rather than fork the segment.
func TestFirstAppendWaitsForStartQuorum(t *testing.T) {
	// Follower 2 is unreachable from the start, and may hold what the
	// leader lost.
	h := newHarnessDown(t, 2, nil, []uint64{2}, 2, 3)
	if err := h.r.Refuse(); !errors.Is(err, wire.ErrFenced) {
		t.Fatalf("Refuse with a needed follower unreachable: %v, want ErrFenced", err)
	}
	h.followers[2].set(false, false)
	deadline := time.Now().Add(10 * time.Second)
	for h.r.Refuse() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Refuse after the follower returned: %v", h.r.Refuse())
		}
	}
}

// TestDiskFullFollower: a follower whose disk is full refuses appends but
// answers probes. The leader treats it like an unreachable follower: it
// acknowledges with the rest of the quorum, backs off instead of hammering
// it, and catches it up once space is freed.
func TestDiskFullFollower(t *testing.T) {
	h := newHarness(t, 2, 2, 3)
	full := h.followers[3]
	full.mu.Lock()
	full.full = true
	full.mu.Unlock()
	for range 3 {
		if err := waitAck(t, h.appendBatch(t, 4)); err != nil {
			t.Fatalf("ack with one follower's disk full: %v", err)
		}
	}
	if got := h.followers[2].count(); got != 12 {
		t.Fatalf("healthy follower holds %d of 12", got)
	}
	// Backoff: over ~1.5 s a retry loop without one would try hundreds
	// of times; with 100 ms doubling it is a handful.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if err := waitAck(t, h.appendBatch(t, 1)); err != nil {
			t.Fatalf("ack while backing off: %v", err)
		}
		// Pacing, not waiting: the test counts what reaches the full
		// follower while time passes.
		time.Sleep(50 * time.Millisecond)
	}
	full.mu.Lock()
	refused := full.refused
	full.full = false
	full.mu.Unlock()
	if refused == 0 || refused > 15 {
		t.Fatalf("full follower was sent %d appends in ~1.5 s; want a few (backoff)", refused)
	}
	want := int(h.r.ReadLimit())
	if err := testcluster.Poll(10*time.Second, func() error {
		if n := full.count(); n < want {
			return fmt.Errorf("freed follower holds %d of %d", n, want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
