package consensus

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/mux"
)

type instance struct {
	c    *Consensus
	fsm  *metadata.FSM
	stop func()
}

func open(t *testing.T, dir, addr string) *instance {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	m := mux.New(ln, nil, logger)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = m.Serve(ctx) }()
	fsm := metadata.NewFSM()
	c, err := Open(Config{NodeID: 1, Dir: dir, Layer: mux.NewRaftLayer(m), FSM: fsm, Logger: logger})
	if err != nil {
		cancel()
		wg.Wait()
		t.Fatal(err)
	}
	return &instance{c: c, fsm: fsm, stop: func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		cancel()
		_ = m.Close()
		wg.Wait()
	}}
}

func waitLeader(t *testing.T, c *Consensus) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !c.IsLeader() {
		select {
		case <-deadline:
			t.Fatal("no leader")
		case <-tick.C:
		}
	}
}

// TestBootstrapProposeSnapshotReopen covers the Raft wiring end to end on
// one node: bootstrap, proposals, a snapshot, and a restart from disk that
// needs no bootstrap and restores the state.
func TestBootstrapProposeSnapshotReopen(t *testing.T) {
	dir := t.TempDir()
	in := open(t, dir, "127.0.0.1:0")
	addr := in.c.Addr()
	if in.c.HasExistingState() {
		t.Fatal("fresh dir reports existing state")
	}
	if err := in.c.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, in.c)
	ctx := t.Context()
	if res, err := in.c.Propose(ctx, metadata.CreateTopic{Topic: "a", Leader: 1}); err != nil || res.Status != metadata.Applied {
		t.Fatalf("propose: %+v %v", res, err)
	}
	if res, err := in.c.Propose(ctx, metadata.CreateTopic{Topic: "a", Leader: 1}); err != nil || res.Status != metadata.NoOp {
		t.Fatalf("repeat propose: %+v %v", res, err)
	}
	if _, err := in.c.ProposeRaw(ctx, []byte{99}); err == nil {
		t.Fatal("undecodable proposal accepted")
	}
	if st := in.c.SnapshotStats(); st != (SnapshotStats{}) {
		t.Fatalf("snapshot stats before any snapshot: %+v", st)
	}
	if err := in.c.Raft().Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	persisted := in.c.SnapshotStats()
	if persisted.Bytes <= 0 || persisted.PersistDuration <= 0 || persisted.Restores != 0 {
		t.Fatalf("snapshot stats after a snapshot: %+v", persisted)
	}
	if res, err := in.c.Propose(ctx, metadata.Rollover{Topic: "a", Segment: 1, Count: 3, NextLeader: 1}); err != nil || res.Err != nil {
		t.Fatalf("rollover: %+v %v", res, err)
	}
	m, err := in.c.Membership()
	if err != nil || len(m.Voters) != 1 || m.Voters[0] != 1 || m.Addrs[1] != addr {
		t.Fatalf("membership %+v %v", m, err)
	}
	in.stop()

	in = open(t, dir, addr)
	defer in.stop()
	if !in.c.HasExistingState() {
		t.Fatal("restart does not see its state")
	}
	waitLeader(t, in.c)
	if err := in.c.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	// Open found the snapshot on disk (its size) and Raft restored it.
	if st := in.c.SnapshotStats(); st.Bytes != persisted.Bytes || st.RestoreBytes != persisted.Bytes || st.Restores != 1 || st.RestoreDuration <= 0 {
		t.Fatalf("snapshot stats after a restart: %+v, persisted %+v", st, persisted)
	}
	tp, ok := in.fsm.Topic("a")
	if !ok || tp.CurrentSegment != 2 || tp.SealedSegments[1] != 3 {
		t.Fatalf("state after restart: %+v %v", tp, ok)
	}
	if term, _ := in.c.LastVote(); term == 0 {
		t.Fatal("no persisted vote")
	}
}
