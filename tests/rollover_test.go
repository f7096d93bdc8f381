package tests

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/status"
)

const (
	rollEntries  = 50
	rollMonitor  = 150 * time.Millisecond
	rollSegments = 10 // rollover writes rollSegments * rollEntries entries
)

func startRollCluster(t *testing.T) *testcluster.Cluster {
	return testcluster.Start(t, testcluster.Options{
		Nodes:             3,
		MaxSegmentEntries: rollEntries,
		MonitorInterval:   rollMonitor,
	})
}

// waitRolled waits until every running node sees topic's open segment
// past seg (the monitor sealed it) and returns the state.
func waitRolled(t *testing.T, c *testcluster.Cluster, topic string, seg uint64) status.State {
	t.Helper()
	var st status.State
	testcluster.Eventually(t, 20*time.Second, func() error {
		for _, id := range c.RunningIDs() {
			s, err := c.State(id, topic)
			if err != nil {
				return err
			}
			if s.CurrentSegment <= seg {
				return fmt.Errorf("node %d: current_segment still %d", id, s.CurrentSegment)
			}
			st = s
		}
		return nil
	})
	return st
}

// nextVoter is the round-robin successor of id among ids (sorted).
func nextVoter(ids []uint64, id uint64) uint64 {
	ids = slices.Sorted(slices.Values(ids))
	for _, v := range ids {
		if v > id {
			return v
		}
	}
	return ids[0]
}

// checkRoundRobin checks that every segment's leader is the successor of
// the previous segment's leader.
func checkRoundRobin(t *testing.T, st status.State, ids []uint64) {
	t.Helper()
	segs := make([]uint64, 0, len(st.SegmentLeaders))
	for k := range st.SegmentLeaders {
		n, err := strconv.ParseUint(k, 10, 64)
		if err != nil {
			t.Fatalf("segment_leaders key %q", k)
		}
		segs = append(segs, n)
	}
	slices.Sort(segs)
	for i := 1; i < len(segs); i++ {
		prev := st.SegmentLeaders[strconv.FormatUint(segs[i-1], 10)]
		cur := st.SegmentLeaders[strconv.FormatUint(segs[i], 10)]
		if want := nextVoter(ids, prev); cur != want {
			t.Errorf("segment %d led by %d after segment %d led by %d; want %d (round robin): %+v", segs[i], cur, segs[i-1], prev, want, st)
		}
	}
}

// writeRolled writes rounds of exactly rollEntries entries, waiting for
// each round's segment to be sealed, and returns everything written.
func writeRolled(t *testing.T, c *testcluster.Cluster, topic string, rounds int) []string {
	t.Helper()
	conn := c.Conn(c.Leader().ID)
	mustOK(t, conn, "REGISTER "+topic)
	var written []string
	for r := range rounds {
		st, err := c.State(1, topic)
		if err != nil {
			t.Fatal(err)
		}
		batch := seq(topic, r*rollEntries, rollEntries)
		putMany(t, conn, topic, batch)
		written = append(written, batch...)
		waitRolled(t, c, topic, st.CurrentSegment)
	}
	return written
}

// rollover: segments roll at max_segment_entries, leaders rotate round
// robin, sealed counts sum to what was written, and reads across every
// segment (through every node) return each entry once, in order.
func TestRollover(t *testing.T) {
	skipShort(t)
	c := startRollCluster(t)
	written := writeRolled(t, c, "roll", rollSegments)

	st, err := c.State(2, "roll")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.SealedSegments) != rollSegments {
		t.Errorf("sealed segments: %d, want %d: %+v", len(st.SealedSegments), rollSegments, st)
	}
	for seg, n := range st.SealedSegments {
		if n != rollEntries {
			t.Errorf("segment %s sealed with %d entries, want exactly %d", seg, n, rollEntries)
		}
	}
	if got := testcluster.SealedTotal(st); got != uint64(len(written)) {
		t.Errorf("sealed counts sum to %d, wrote %d", got, len(written))
	}
	checkRoundRobin(t, st, c.IDs())
	leaders := map[uint64]bool{}
	for _, l := range st.SegmentLeaders {
		leaders[l] = true
	}
	if len(leaders) != len(c.Nodes) {
		t.Errorf("segments were led by %v; want every node", leaders)
	}

	// Burst: writes racing with the monitor; nothing lost or duplicated.
	burst := seq("roll-burst", 0, 4*rollEntries)
	putMany(t, c.Conn(3), "roll", burst)
	written = append(written, burst...)

	// Read through a different node for every GET.
	var got []string
	conns := []*testcluster.Conn{c.Conn(1), c.Conn(2), c.Conn(3)}
	for i := 0; ; i++ {
		r := do(t, conns[i%3], "GET roll")
		if r == "EMPTY" {
			break
		}
		if len(r) < 3 || r[:3] != "OK " || i > len(written) {
			t.Fatalf("GET %d: %q", i, r)
		}
		got = append(got, r[3:])
	}
	sameList(t, "GET across all segments", got, written)

	// The burst's segments roll too and the counts still add up.
	testcluster.Eventually(t, 20*time.Second, func() error {
		s, err := c.State(1, "roll")
		if err != nil {
			return err
		}
		if total := testcluster.SealedTotal(s); total > uint64(len(written)) || total < uint64(len(written)-rollEntries) {
			return fmt.Errorf("sealed total %d, written %d", total, len(written))
		}
		return nil
	})
}
