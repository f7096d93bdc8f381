package tests

import (
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/status"
)

// cursorAt maps "n entries consumed" to the (segment, offset) of the next
// entry, from the sealed segments' counts (segments are numbered from 1).
func cursorAt(t *testing.T, st status.State, n uint64) status.Cursor {
	t.Helper()
	for seg := uint64(1); seg < st.CurrentSegment; seg++ {
		cnt, ok := st.SealedSegments[strconv.FormatUint(seg, 10)]
		if !ok {
			t.Fatalf("segment %d missing from sealed_segments %v", seg, st.SealedSegments)
		}
		if n < cnt {
			return status.Cursor{Segment: seg, Offset: n}
		}
		n -= cnt
	}
	return status.Cursor{Segment: st.CurrentSegment, Offset: n}
}

func readN(t *testing.T, c *testcluster.Conn, topic string, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for range n {
		r := do(t, c, "GET "+topic)
		if len(r) < 3 || r[:3] != "OK " {
			t.Fatalf("GET %s after %d: %q", topic, len(out), r)
		}
		out = append(out, r[3:])
	}
	return out
}

// recovery: stop the whole cluster with SIGTERM (each node must exit 0),
// restart it from disk: topics, segments, data and cursors are back and GET
// continues where it was.
func TestRecovery(t *testing.T) {
	skipShort(t)
	c := startRollCluster(t)
	written := writeRolled(t, c, "recover", 4)
	open := seq("recover-open", 0, rollEntries/2) // stays in the open segment
	putMany(t, c.Conn(2), "recover", open)
	written = append(written, open...)
	mustOK(t, c.Conn(1), "REGISTER recover-empty")
	before, err := c.State(1, "recover")
	if err != nil {
		t.Fatal(err)
	}

	checkState := func(t *testing.T) {
		t.Helper()
		for _, id := range c.IDs() {
			after, err := c.State(id, "recover")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(after.SealedSegments, before.SealedSegments) || !reflect.DeepEqual(after.SegmentLeaders, before.SegmentLeaders) || after.CurrentSegment != before.CurrentSegment {
				t.Fatalf("node %d STATE after restart %+v, before %+v", id, after, before)
			}
			if _, err := c.State(id, "recover-empty"); err != nil {
				t.Fatalf("registered topic lost: %v", err)
			}
		}
	}

	// Phase 1: committed cursors, segments and data come back after the
	// whole cluster is stopped at once.
	half := len(written) / 2
	sameList(t, "before restart", readN(t, c.Conn(3), "recover", half), written[:half])
	want := cursorAt(t, before, uint64(half))
	testcluster.Eventually(t, 10*time.Second, func() error {
		for _, id := range c.IDs() {
			s, err := c.State(id, "recover")
			if err != nil {
				return err
			}
			if s.Cursor != want {
				return fmt.Errorf("node %d committed cursor %+v, want %+v", id, s.Cursor, want)
			}
		}
		return nil
	})
	c.StopAll() // fails the test unless every node exits 0
	if t.Failed() {
		t.FailNow()
	}
	c.RestartAll()
	checkState(t)
	quarter := half + (len(written)-half)/2
	sameList(t, "GET after restart continues at the cursor", readN(t, c.Conn(1), "recover", quarter-half), written[half:quarter])

	// Phase 2: a clean shutdown right after reading loses no cursor
	// progress: the Raft leader goes first (while it still has a quorum to
	// commit with), then the others.
	leader := c.Leader().ID
	c.Stop(leader)
	for _, id := range c.IDs() {
		if id != leader {
			c.Stop(id)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	c.RestartAll()
	checkState(t)
	rest := drain(t, c.Conn(2), "recover", len(written))
	sameList(t, "GET after a clean stop right after reading", rest, written[quarter:])

	// The restarted cluster still takes writes.
	mustOK(t, c.Conn(2), "PUT recover after-restart")
	if r := do(t, c.Conn(3), "GET recover"); r != "OK after-restart" {
		t.Fatalf("GET after restart: %q", r)
	}
}

// A follower killed with SIGKILL (no clean shutdown) restarts from its
// files, rejoins without a new bootstrap, and its sealed segment is read
// back intact.
func TestKillRestartFollower(t *testing.T) {
	skipShort(t)
	c := startRollCluster(t)
	written := writeRolled(t, c, "crash", 3)
	st, err := c.State(1, "crash")
	if err != nil {
		t.Fatal(err)
	}
	raftLeader := c.Leader().ID
	var victim uint64
	for seg, holder := range st.SegmentLeaders {
		if _, sealed := st.SealedSegments[seg]; sealed && holder != raftLeader && holder != st.LeaderNode {
			victim = holder
			break
		}
	}
	if victim == 0 {
		t.Fatalf("no sealed segment on a node that leads nothing else: %+v (raft leader %d)", st, raftLeader)
	}
	c.Kill(victim)
	// The rest of the cluster keeps taking writes to the open segment.
	more := seq("crash-more", 0, 10)
	putMany(t, c.Conn(raftLeader), "crash", more)
	written = append(written, more...)

	c.Restart(victim)
	c.WaitReady()
	if m, err := c.Metrics(victim); err != nil || m.CurrentTerm == 0 {
		t.Fatalf("restarted node METRICS %+v, %v", m, err)
	}
	got := drain(t, c.Conn(victim), "crash", len(written))
	sameList(t, "GET after a follower crash and restart", got, written)
}
