package tests

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/status"
)

// replay: ~500 entries PUT through all three nodes across ~10 segments of
// 50; FETCHed in pages twice, from two nodes, once while producers keep
// writing and the monitor rolls segments. Both replays are identical,
// dense from 0, in PUT order per producer, with non-decreasing times.
func testLogReplay(t *testing.T, c *testcluster.Cluster) {
	const (
		topic  = "replay"
		before = 120 // per producer before the replays
		during = 50  // per producer while replay 1 runs
	)
	start := time.Now()
	ids := c.IDs()
	if err := produce(c, topic, "r", ids, 0, before); err != nil {
		t.Fatal(err)
	}
	st, err := c.State(1, topic)
	if err != nil {
		t.Fatal(err)
	}
	segBefore := st.CurrentSegment

	// Replay 1 through node 1 in pages of 37 (not a divisor of the segment
	// size), chasing the tail while the producers write more; it ends
	// once they are done, a segment rolled during it, and it read EMPTY.
	l1 := dialLog(t, c, 1)
	produced := make(chan error, 1)
	go func() { produced <- produce(c, topic, "r", ids, before, during) }()
	var (
		replay1 []status.Entry
		next    uint64
		done    bool
		pages   int
		errs    []string
	)
	testcluster.Eventually(t, 60*time.Second, func() error {
		for {
			page, nx, err := fetchPage(l1, topic, next, 37)
			if err != nil && strings.Contains(err.Error(), `"ERR `) && len(errs) < 100 {
				// tail_during_rollovers checks these; here they are retried.
				errs = append(errs, err.Error())
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if page == nil {
				break
			}
			pages++
			replay1 = append(replay1, page...)
			next = nx
		}
		if !done {
			return producersDone(t, produced, &done, "replay", next)
		}
		st, err := c.State(1, topic)
		if err != nil {
			return err
		}
		if st.CurrentSegment == segBefore {
			return fmt.Errorf("no rollover yet (segment %d)", st.CurrentSegment)
		}
		return nil
	})
	total := len(ids) * (before + during)
	if len(replay1) != total {
		t.Fatalf("replay 1 through node 1: %d entries, want %d (every PUT was acknowledged)", len(replay1), total)
	}
	st, err = c.State(2, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.SealedSegments) < 5 {
		t.Fatalf("%d entries in only %d sealed segments: %+v", total, len(st.SealedSegments), st)
	}
	t.Logf("replay 1: %d entries in %d pages; segment %d before it, %d after; %d sealed segments; %d ERR replies retried (first %q)", len(replay1), pages, segBefore, st.CurrentSegment, len(st.SealedSegments), len(errs), first(errs))

	// Replay 2 through node 2 (a different reader, pages of 64).
	l2 := dialLog(t, c, 2)
	replay2 := fetchAll(t, l2, topic, 0, 64)
	if len(replay2) != len(replay1) {
		t.Fatalf("replay 2 through node 2: %d entries, replay 1 %d", len(replay2), len(replay1))
	}
	for i := range replay1 {
		if replay1[i] != replay2[i] {
			t.Fatalf("offset %d: replay 1 %+v, replay 2 %+v", i, replay1[i], replay2[i])
		}
	}
	checkProducerOrder(t, replay1, "r", len(ids), before+during)
	lo, hi := start.Add(-5*time.Second).UnixMilli(), time.Now().Add(5*time.Second).UnixMilli()
	for i, e := range replay1 {
		if e.TimestampMs < lo || e.TimestampMs > hi {
			t.Fatalf("offset %d: timestamp_ms %d outside the test's run [%d, %d]", i, e.TimestampMs, lo, hi)
		}
		if i > 0 && e.TimestampMs < replay1[i-1].TimestampMs {
			t.Fatalf("offset %d: timestamp_ms %d before offset %d's %d (times must not decrease)", i, e.TimestampMs, i-1, replay1[i-1].TimestampMs)
		}
	}

	// The range, its ends, and a replay from the middle through node 3.
	for _, id := range ids {
		o := offsetsOf(dialLog(t, c, id), topic)
		if o.Earliest != 0 || o.Latest != uint64(total) {
			t.Errorf("node %d OFFSETS %s = %+v, want 0..%d", id, topic, o, total)
		}
	}
	l3 := dialLog(t, c, 3)
	if r := l3.do(fmt.Sprintf("FETCH %s %d", topic, total)); r != "EMPTY" {
		t.Errorf("FETCH at latest: %q, want EMPTY", abbrev(r))
	}
	want := fmt.Sprintf("ERR offset out of range (earliest 0, latest %d)", total)
	if r := l3.do(fmt.Sprintf("FETCH %s %d", topic, total+1)); r != want {
		t.Errorf("FETCH past latest: %q, want %q", r, want)
	}
	mid := fetchAll(t, l3, topic, 123, 1000)
	if !slices.Equal(mid, replay1[123:]) {
		t.Errorf("FETCH from 123 through node 3 differs from replay 1")
	}
	// A plain FETCH answers the default page of 100.
	page, _, err := fetchPage(l3, topic, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) < 1 || !slices.Equal(page, replay1[:len(page)]) {
		t.Errorf("FETCH %s 0 10000: %d entries differing from replay 1", topic, len(page))
	}
	var def status.Fetch
	l3.json("FETCH "+topic+" 0", &def)
	if len(def.Entries) != 100 || def.Next != 100 {
		t.Errorf("FETCH without max: %d entries, next %d; want the default 100", len(def.Entries), def.Next)
	}
}

// right_after_register: a topic REGISTERed through the Raft leader (OK:
// the topic is in the Raft log) is at once an empty log there: OFFSETS
// {0,0}, FETCH 0 EMPTY, SEEK 0 offset 0, COMMITTED offset -1. Ten fresh
// topics, each asked right after its REGISTER.
func testLogAfterRegister(t *testing.T, c *testcluster.Cluster) {
	l := dialLog(t, c, c.Leader().ID)
	var failures []string
	for i := range 10 {
		topic := fmt.Sprintf("fresh-%d", i)
		l.ok("REGISTER " + topic)
		for _, q := range []struct{ line, want string }{
			{"OFFSETS " + topic, `{"topic":"` + topic + `","earliest":0,"latest":0}`},
			{"FETCH " + topic + " 0", "EMPTY"},
			{"SEEK " + topic + " 0", `{"topic":"` + topic + `","offset":0}`},
			{"COMMITTED g " + topic, `{"group":"g","topic":"` + topic + `","offset":-1,"lag":0,"skipped":0}`},
		} {
			if r := l.do(q.line); r != q.want {
				failures = append(failures, fmt.Sprintf("%s: got %q, want %q", q.line, r, q.want))
			}
		}
	}
	if len(failures) > 0 {
		t.Errorf("%d of 40 log commands right after REGISTER (through the Raft leader, node %d) failed; first: %s", len(failures), l.id, failures[0])
	}
}

// tail_during_rollovers / tail_switching_nodes: three producers write 1200
// entries (24 segments of 50 rolling under them) while a reader FETCHes
// the tail in pages of 5, through the Raft leader only or through the
// next node for every page. A FETCH at or below the latest acknowledged
// entry must answer entries or EMPTY: a segment that just opened, or a
// node whose metadata lags the one that answered before, is the server's
// to wait for (it retries metadata moves for 5 s), not an ERR for the
// reader. The reader retries any ERR and the log must still come out
// complete and identical to a final replay.
func testLogTailRollovers(t *testing.T, c *testcluster.Cluster, switching bool) {
	const per = 400
	topic := "tail-one"
	via := []uint64{c.Leader().ID}
	if switching {
		topic, via = "tail-switch", c.IDs()
	}
	conns := make([]*logConn, len(via))
	for i, id := range via {
		conns[i] = dialLog(t, c, id)
	}
	conns[0].ok("REGISTER " + topic)
	// A read right after REGISTER is right_after_register's case: wait
	// until every reader node serves the empty topic.
	testcluster.Eventually(t, 10*time.Second, func() error {
		for _, l := range conns {
			if r, err := l.send("FETCH " + topic + " 0"); err != nil || r != "EMPTY" {
				return fmt.Errorf("node %d: FETCH %s 0 = %q, %v", l.id, topic, r, err)
			}
		}
		return nil
	})
	st0, err := c.State(via[0], topic)
	if err != nil {
		t.Fatal(err)
	}
	produced := make(chan error, 1)
	go func() { produced <- produce(c, topic, "x", c.IDs(), 0, per) }()
	var (
		got                    []status.Entry
		next                   uint64
		done                   bool
		k                      int
		errReplies             []string
		unknownSeg, outOfRange int
	)
	testcluster.Eventually(t, 60*time.Second, func() error {
		for {
			l := conns[k%len(conns)]
			k++
			page, nx, err := fetchPage(l, topic, next, 5)
			if err != nil {
				if !strings.Contains(err.Error(), `"ERR `) {
					t.Fatal(err)
				}
				errReplies = append(errReplies, err.Error())
				switch {
				case strings.Contains(err.Error(), "unknown topic"):
					unknownSeg++
				case strings.Contains(err.Error(), "out of range"):
					outOfRange++
				}
				continue
			}
			if page == nil {
				break
			}
			got = append(got, page...)
			next = nx
		}
		if !done {
			return producersDone(t, produced, &done, "reader", next)
		}
		return nil
	})
	total := 3 * per
	st, err := c.State(via[0], topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("read %d entries at the tail through %v while the open segment moved from %d to %d; %d ERR replies", len(got), via, st0.CurrentSegment, st.CurrentSegment, len(errReplies))
	if len(got) != total {
		t.Fatalf("read %d entries at the tail, want %d", len(got), total)
	}
	if final := fetchAll(t, conns[0], topic, 0, 1000); !slices.Equal(final, got) {
		t.Errorf("the tail reader's %d entries differ from a replay after the writes", len(got))
	}
	checkProducerOrder(t, got, "x", 3, per)
	if len(errReplies) > 0 {
		t.Errorf("FETCH below latest answered ERR %d times while segments rolled (%d naming a segment its leader does not know yet, %d out of range for an offset already served); first: %s",
			len(errReplies), unknownSeg, outOfRange, errReplies[0])
		for _, e := range errReplies {
			if strings.Contains(e, "out of range") {
				t.Errorf("e.g. %s", e)
				break
			}
		}
	}
}

// seek: entries written in 8 bursts of 15 with the clock moving between
// bursts, so runs of entries share a timestamp. For every timestamp t in
// the log (and t-1, t+1), SEEK t through each node is the first offset
// whose timestamp is >= t; SEEK 0 is earliest, a far future time latest.
func testLogSeek(t *testing.T, c *testcluster.Cluster) {
	const topic = "seek"
	l := dialLog(t, c, 1)
	l.ok("REGISTER " + topic)
	for b := range 8 {
		putPayloads(t, l, topic, seq(fmt.Sprintf("t%d", b), 0, 15))
		last := time.Now().UnixMilli()
		testcluster.Eventually(t, time.Second, func() error {
			if time.Now().UnixMilli() <= last+2 {
				return fmt.Errorf("clock still at %d", last)
			}
			return nil
		})
	}
	log := fetchAll(t, dialLog(t, c, 2), topic, 0, 1000)
	n := uint64(len(log))
	if n != 120 {
		t.Fatalf("FETCH: %d entries, want 120", n)
	}
	firstAtOrAfter := func(ts int64) uint64 {
		return uint64(sort.Search(len(log), func(i int) bool { return log[i].TimestampMs >= ts }))
	}
	probes := map[int64]bool{0: true, 1: true, math.MaxInt64: true, 4102444800000: true} // 2100-01-01
	distinct := 0
	for i, e := range log {
		if i == 0 || e.TimestampMs != log[i-1].TimestampMs {
			distinct++
		}
		probes[e.TimestampMs-1], probes[e.TimestampMs], probes[e.TimestampMs+1] = true, true, true
	}
	if distinct < 8 {
		t.Fatalf("only %d distinct timestamps over 8 bursts", distinct)
	}
	conns := []*logConn{l, dialLog(t, c, 2), dialLog(t, c, 3)}
	k := 0
	for ts := range probes {
		cn := conns[k%len(conns)]
		k++
		var s status.Seek
		cn.json(fmt.Sprintf("SEEK %s %d", topic, ts), &s)
		if want := firstAtOrAfter(ts); s.Topic != topic || s.Offset != want {
			t.Errorf("node %d SEEK %s %d = %+v, want offset %d", cn.id, topic, ts, s, want)
		}
	}
	o := offsetsOf(l, topic)
	for ts, want := range map[int64]uint64{0: o.Earliest, math.MaxInt64: o.Latest, 4102444800000: o.Latest} {
		var s status.Seek
		l.json(fmt.Sprintf("SEEK %s %d", topic, ts), &s)
		if s.Offset != want {
			t.Errorf("SEEK %s %d = %d, want %d", topic, ts, s.Offset, want)
		}
	}
	t.Logf("%d SEEKs over %d entries with %d distinct timestamps", len(probes), n, distinct)
}

// producersDone is the end check of a tail reader that caught up: while
// the producers still write it says so; once they finish (a failure ends
// the test) it asks for one more FETCH to reach the end.
func producersDone(t *testing.T, produced <-chan error, done *bool, who string, at uint64) error {
	select {
	case err := <-produced:
		if err != nil {
			t.Fatal(err)
		}
		*done = true
		return fmt.Errorf("producers done; one more FETCH to reach the end")
	default:
		return fmt.Errorf("producers still writing (%s at %d)", who, at)
	}
}
