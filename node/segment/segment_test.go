package segment_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/walrus-go/walrus/backends/memstore"
	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/segment"
	"github.com/walrus-go/walrus/node/wire"
)

// contact is a switchable Raft-leader contact.
type contact struct {
	mu  sync.Mutex
	err error
}

func (c *contact) ConfirmContact(context.Context) (time.Time, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now(), 1, c.err
}

func (c *contact) set(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// replica is an in-memory follower holding a fixed number of entries.
type replica struct {
	mu    sync.Mutex
	count uint64
	down  bool // unreachable
}

func (r *replica) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

func (r *replica) ReplicaAppend(_ context.Context, _ string, _, _, first uint64, entries [][]byte) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return 0, errors.New("replica unreachable")
	}
	if first > r.count {
		return r.count, &wire.ReplicaGapError{Count: r.count}
	}
	if end := first + uint64(len(entries)); end > r.count {
		r.count = end
	}
	return r.count, nil
}

func (r *replica) ReplicaAppendAsync(topic string, seg, epoch, first uint64, entries [][]byte, cb func(uint64, error)) {
	go func() { cb(r.ReplicaAppend(context.Background(), topic, seg, epoch, first, entries)) }()
}

func (r *replica) RecoveryRead(context.Context, string, uint64, uint64, int) ([][]byte, error) {
	return nil, errors.New("not in this test")
}

type fixture struct {
	m        *segment.Manager
	fsm      *metadata.FSM
	store    engine.SegmentStore
	contact  *contact
	replicas map[uint64]*replica
	steps    chan string
	dir      string
	stop     func()
	// writerIdle is Config.WriterIdle (0: the default).
	writerIdle time.Duration
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{fsm: metadata.NewFSM(), store: memstore.New(), contact: &contact{}, replicas: map[uint64]*replica{2: {}, 3: {}}, steps: make(chan string, 16), dir: t.TempDir()}
	f.start(t)
	return f
}

func (f *fixture) start(t *testing.T) {
	t.Helper()
	f.m = segment.New(segment.Config{Self: 1, Dir: f.dir, MaxSegmentEntries: 1000, FailureTimeout: time.Second, LeaseSyncInterval: 10 * time.Millisecond, WriterIdle: f.writerIdle}, segment.Deps{
		Store: f.store, FSM: f.fsm, Contact: f.contact,
		Peer: func(id uint64) segment.Peer { return f.replicas[id] },
		Hint: func(string) {},
		StepDown: func(_ context.Context, topic string, _ uint64) error {
			select {
			case f.steps <- topic:
			default:
			}
			return nil
		},
		Metrics: metrics.New(1), Logger: slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m := f.m
	go func() { m.Run(ctx); close(done) }()
	var once sync.Once
	f.stop = func() { once.Do(func() { cancel(); <-done; m.Close() }) }
	t.Cleanup(f.stop)
}

// restart stops the manager and starts a new one on the same directory
// and store, as a process restart does.
func (f *fixture) restart(t *testing.T) {
	t.Helper()
	f.stop()
	f.start(t)
}

// create makes a topic led by this node, opened after it started (at a
// Raft index past the one the fake contact reports).
func (f *fixture) create(t *testing.T, topic string, replicas []uint64) {
	t.Helper()
	f.createAt(t, topic, replicas, 100)
}

func (f *fixture) createAt(t *testing.T, topic string, replicas []uint64, index uint64) {
	t.Helper()
	b, err := metadata.Encode(metadata.CreateTopic{Topic: topic, Leader: 1, Replicas: replicas, ReplicationFactor: max(len(replicas), 1), AckQuorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.fsm.Apply(&raft.Log{Type: raft.LogCommand, Index: index, Data: b}).(metadata.Result); r.Err != nil {
		t.Fatal(r.Err)
	}
}

func one(s string) [][]byte { return [][]byte{[]byte(s)} }

// TestLeaderBehindReplicasStepsDown (issue 11, hole 1): a leader whose
// replicas hold entries it lost (a wiped disk) acknowledges nothing and
// asks the Raft leader to recover the segment.
func TestLeaderBehindReplicasStepsDown(t *testing.T) {
	f := newFixture(t)
	f.create(t, "t", []uint64{1, 2, 3})
	f.replicas[2].count, f.replicas[3].count = 150, 150
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.m.Append(ctx, "t", one("x")); !errors.Is(err, wire.ErrUnacked) && !errors.Is(err, wire.ErrFenced) {
		t.Fatalf("append by a leader behind its replicas: %v, want unacked or fenced", err)
	}
	select {
	case topic := <-f.steps:
		if topic != "t" {
			t.Fatalf("stepped down from %q", topic)
		}
	case <-ctx.Done():
		t.Fatal("the leader never asked to step down")
	}
	if err := f.m.Append(ctx, "t", one("y")); err == nil {
		t.Fatal("an append was acknowledged after stepping down")
	}
}

// TestRolloverFenceSurvivesRestart (issue 11, hole 9): a segment fenced for
// a rollover stays fenced when its leader restarts before the rollover is
// applied.
func TestRolloverFenceSurvivesRestart(t *testing.T) {
	f := newFixture(t)
	f.create(t, "u", nil)
	ctx := t.Context()
	if err := f.m.Append(ctx, "u", one("a")); err != nil {
		t.Fatal(err)
	}
	if _, fenced, err := f.m.Fence(ctx, "u", 1, 0); err != nil || !fenced {
		t.Fatalf("fence: %v %v", fenced, err)
	}
	f.restart(t) // the same data dir and store
	if err := f.m.Append(ctx, "u", one("b")); !errors.Is(err, wire.ErrFenced) {
		t.Fatalf("append after a restart while fenced: %v, want ErrFenced", err)
	}
	if c, fenced, err := f.m.Fence(ctx, "u", 1, 0); err != nil || !fenced || c != 1 {
		t.Fatalf("re-fence after restart: count %d fenced %v err %v, want the same count 1", c, fenced, err)
	}
	if err := f.m.Unfence(ctx, "u", 1); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Append(ctx, "u", one("c")); err != nil {
		t.Fatalf("append after unfence: %v", err)
	}
}

// TestIdleWritersRetire (issue 17): a topic's writer goes away after a
// quiet period and comes back on the next append, with its fence and its
// entries intact.
func TestIdleWritersRetire(t *testing.T) {
	f := &fixture{fsm: metadata.NewFSM(), store: memstore.New(), contact: &contact{}, replicas: map[uint64]*replica{2: {}, 3: {}}, steps: make(chan string, 16), dir: t.TempDir(), writerIdle: 20 * time.Millisecond}
	f.start(t)
	ctx := t.Context()
	for _, topic := range []string{"a", "b"} {
		f.create(t, topic, nil)
		if err := f.m.Append(ctx, topic, one("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, fenced, err := f.m.Fence(ctx, "b", 1, 0); err != nil || !fenced {
		t.Fatalf("fence: %v %v", fenced, err)
	}
	waitFor(t, "idle writers to retire", func() bool { return f.m.Writers() == 0 })
	if err := f.m.Append(ctx, "a", one("y")); err != nil {
		t.Fatalf("append after the writer retired: %v", err)
	}
	if n, err := f.m.Count(ctx, "a", 1); err != nil || n != 2 {
		t.Fatalf("count after the writer came back: %d, %v; want 2", n, err)
	}
	if err := f.m.Append(ctx, "b", one("z")); !errors.Is(err, wire.ErrFenced) {
		t.Fatalf("append to a fenced topic after its writer retired: %v, want ErrFenced", err)
	}

	// A replicated topic's replicator retires with its writer; what its
	// quorum confirmed stays readable even while no follower answers.
	f.create(t, "r", []uint64{1, 2, 3})
	if err := f.m.Append(ctx, "r", [][]byte{[]byte("1"), []byte("2")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle replicator to retire", func() bool { return f.m.Writers() == 0 && f.m.Replicators() == 0 })
	f.replicas[2].setDown(true)
	f.replicas[3].setDown(true)
	rep, err := f.m.Fetch(ctx, &wire.FetchRequest{Topic: "r", Segment: 1, Max: 10, MaxBytes: 1 << 20})
	if err != nil || rep.Readable != 2 || len(rep.Entries) != 2 {
		t.Fatalf("fetch with the followers down after the replicator retired: %+v, %v; want 2 readable", rep, err)
	}
	if n := f.m.Replicators(); n != 0 {
		t.Fatalf("a read made %d replicators for a retired segment", n)
	}
	f.replicas[2].setDown(false)
	f.replicas[3].setDown(false)
	if err := f.m.Append(ctx, "r", one("3")); err != nil {
		t.Fatalf("append after the replicator retired: %v", err)
	}
}

// TestNoContactNoAppend (issue 11, hole 4): without a fresh proof of
// contact with the Raft leader, a segment leader refuses appends.
func TestNoContactNoAppend(t *testing.T) {
	f := newFixture(t)
	f.create(t, "u", nil)
	f.contact.set(errors.New("cut off"))
	ctx := t.Context()
	var nl *wire.NotLeaderError
	if err := f.m.Append(ctx, "u", one("a")); !errors.As(err, &nl) {
		t.Fatalf("append without contact: %v, want NotLeaderError", err)
	}
	f.contact.set(nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f.m.Append(ctx, "u", one("b"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("append after contact returned: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReadsStopAtSealedCount (issue 11, hole 9): a reader whose metadata
// lags never gets entries past a sealed count.
func TestReadsStopAtSealedCount(t *testing.T) {
	f := newFixture(t)
	f.create(t, "u", nil)
	ctx := t.Context()
	for _, e := range []string{"a", "b", "c", "d", "e"} {
		if err := f.m.Append(ctx, "u", one(e)); err != nil {
			t.Fatal(err)
		}
	}
	if r := f.fsm.ApplyCommand(metadata.Rollover{Topic: "u", Segment: 1, Count: 3, NextLeader: 2}); r.Err != nil {
		t.Fatal(r.Err)
	}
	got, err := f.m.Read(ctx, "u", 1, 0, 10)
	if err != nil || len(got) != 3 {
		t.Fatalf("read of a segment sealed at 3: %d entries, %v", len(got), err)
	}
	if got, _ := f.m.Read(ctx, "u", 1, 3, 10); len(got) != 0 {
		t.Fatalf("read past the sealed count: %q", got)
	}
}

// TestReplicaFenceRejectsStaleEpoch exercises the replica's storage-level
// fencing directly, including its durability across a restart.
func TestReplicaFenceRejectsStaleEpoch(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	e := func(s ...string) [][]byte {
		out := make([][]byte, len(s))
		for i, v := range s {
			out[i] = []byte(v)
		}
		return out
	}
	if c, err := f.m.ReplicaAppend(ctx, "t", 1, 1, 0, e("a", "b")); err != nil || c != 2 {
		t.Fatalf("append = %d, %v", c, err)
	}
	// A duplicate (resend) is absorbed; an overlap appends only the tail.
	if c, err := f.m.ReplicaAppend(ctx, "t", 1, 1, 1, e("b", "c")); err != nil || c != 3 {
		t.Fatalf("overlapping append = %d, %v", c, err)
	}
	var gap *wire.ReplicaGapError
	if _, err := f.m.ReplicaAppend(ctx, "t", 1, 1, 5, e("x")); !errors.As(err, &gap) || gap.Count != 3 {
		t.Fatalf("gap append err = %v", err)
	}
	if c, err := f.m.ReplicaFence(ctx, "t", 1, 2); err != nil || c != 3 {
		t.Fatalf("fence = %d, %v", c, err)
	}
	if _, err := f.m.ReplicaAppend(ctx, "t", 1, 1, 3, e("d")); !errors.Is(err, wire.ErrReplicaFenced) {
		t.Fatalf("append at a stale epoch after the fence: %v", err)
	}
	if c, err := f.m.ReplicaAppend(ctx, "t", 1, 2, 3, e("d")); err != nil || c != 4 {
		t.Fatalf("append at the fence epoch = %d, %v", c, err)
	}
	// A lower fence never lowers the epoch.
	if _, err := f.m.ReplicaFence(ctx, "t", 1, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.ReplicaAppend(ctx, "t", 1, 1, 4, e("e")); !errors.Is(err, wire.ErrReplicaFenced) {
		t.Fatalf("stale append after a lower fence: %v", err)
	}
	// The epoch is durable: a restarted node still refuses the old leader.
	f.restart(t)
	if _, err := f.m.ReplicaAppend(ctx, "t", 1, 1, 4, e("e")); !errors.Is(err, wire.ErrReplicaFenced) {
		t.Fatalf("stale append after restart: %v", err)
	}
	if c, err := f.m.ReplicaAppend(ctx, "t", 1, 2, 4, e("e")); err != nil || c != 5 {
		t.Fatalf("append at the fence epoch after restart = %d, %v", c, err)
	}
}

// TestLostStoreUnreplicatedStepsDown (issue 11, found by the nemesis): an
// rf=1 segment that opened before this node restarted, with an empty
// store (a wiped disk), takes no appends — they would sit where readers
// expect the lost entries — and is handed back to be rolled over.
func TestLostStoreUnreplicatedStepsDown(t *testing.T) {
	f := newFixture(t)
	f.createAt(t, "u", nil, 1) // opened before this process proved contact (index 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.m.Append(ctx, "u", one("a")); !errors.Is(err, wire.ErrFenced) {
		t.Fatalf("append to an inherited segment with an empty store: %v, want ErrFenced", err)
	}
	select {
	case topic := <-f.steps:
		if topic != "u" {
			t.Fatalf("stepped down from %q", topic)
		}
	case <-ctx.Done():
		t.Fatal("no step-down")
	}
	// The Raft leader fences it at its count (0) to seal it.
	if c, fenced, err := f.m.Fence(ctx, "u", 1, 0); err != nil || !fenced || c != 0 {
		t.Fatalf("fence for the roll: %d %v %v", c, fenced, err)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := testcluster.Poll(10*time.Second, func() error {
		if !cond() {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
