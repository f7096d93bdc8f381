package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/status"
)

// The log commands (issue 13) with real walrus processes: OFFSETS, SEEK
// and FETCH from any node; consumer groups (READ, ACK, COMMIT, COMMITTED,
// GROUPS) coordinated by the Raft leader. Requests go as raw lines through
// node/client's DoLine and JSON replies are decoded strictly into the
// node/status types, so a field the schema does not know fails the test.

// logConn is one client connection to a node for raw log commands. It is
// not safe for concurrent use; give every goroutine its own.
type logConn struct {
	t       testing.TB
	id      uint64
	addr    string
	timeout time.Duration
	cl      *client.Client
}

func dialLog(t testing.TB, c *testcluster.Cluster, id uint64) *logConn {
	t.Helper()
	l := &logConn{t: t, id: id, addr: c.Node(id).ClientAddr, timeout: 20 * time.Second}
	if err := l.dial(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	return l
}

func (l *logConn) dial() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, l.addr, client.Options{Timeout: l.timeout})
	if err != nil {
		return err
	}
	l.cl = cl
	return nil
}

func (l *logConn) close() {
	if l.cl != nil {
		l.cl.Close()
		l.cl = nil
	}
}

// send sends line as one frame and returns the reply as it was on the wire
// ("OK", "EMPTY", "ERR ...", JSON). err is a connection failure only; the
// next send dials again.
func (l *logConn) send(line string) (string, error) {
	if l.cl == nil {
		if err := l.dial(); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	r, err := l.cl.DoLine(ctx, line)
	var se *client.ServerError
	if err != nil && !errors.As(err, &se) {
		l.close()
		return "", fmt.Errorf("node %d: %s: %w", l.id, abbrev(line), err)
	}
	return r.String(), nil
}

// do is send failing the test on a connection failure (test goroutine only).
func (l *logConn) do(line string) string {
	l.t.Helper()
	r, err := l.send(line)
	if err != nil {
		l.t.Fatal(err)
	}
	return r
}

func (l *logConn) ok(line string) {
	l.t.Helper()
	if r := l.do(line); r != "OK" {
		l.t.Fatalf("node %d: %s: got %q, want OK", l.id, abbrev(line), abbrev(r))
	}
}

// json sends line and decodes the JSON reply into v, failing the test on
// anything else.
func (l *logConn) json(line string, v any) {
	l.t.Helper()
	r := l.do(line)
	if err := decodeStrict(r, v); err != nil {
		l.t.Fatalf("node %d: %s: %v", l.id, abbrev(line), err)
	}
}

// decodeStrict decodes one JSON document with no unknown fields and
// nothing after it.
func decodeStrict(reply string, v any) error {
	if strings.HasPrefix(reply, "ERR") {
		return fmt.Errorf("got %q", reply)
	}
	if !strings.HasPrefix(reply, "{") && !strings.HasPrefix(reply, "[") {
		return fmt.Errorf("reply %q is not JSON", abbrev(reply))
	}
	dec := json.NewDecoder(strings.NewReader(reply))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode %q: %w", abbrev(reply), err)
	}
	if dec.More() {
		return fmt.Errorf("reply %q has data after the JSON document", abbrev(reply))
	}
	return nil
}

// fetchPage is one FETCH: its entries (nil at EMPTY) and the next offset.
// It checks the page's own consistency: topic, dense offsets from off,
// next right after the last entry, at most max entries, READ-only fields
// unset. A reply that is neither JSON nor EMPTY is returned as err.
func fetchPage(l *logConn, topic string, off uint64, max int) ([]status.Entry, uint64, error) {
	line := fmt.Sprintf("FETCH %s %d %d", topic, off, max)
	r, err := l.send(line)
	if err != nil {
		return nil, off, err
	}
	if r == "EMPTY" {
		return nil, off, nil
	}
	var f status.Fetch
	if err := decodeStrict(r, &f); err != nil {
		return nil, off, fmt.Errorf("node %d: %s: %w", l.id, line, err)
	}
	if f.Topic != topic || len(f.Entries) == 0 || len(f.Entries) > max {
		return nil, off, fmt.Errorf("node %d: %s: topic %q with %d entries (want %q, 1..%d)", l.id, line, f.Topic, len(f.Entries), topic, max)
	}
	for i, e := range f.Entries {
		if e.Offset != off+uint64(i) {
			return nil, off, fmt.Errorf("node %d: %s: entry %d has offset %d, want %d (offsets not dense)", l.id, line, i, e.Offset, off+uint64(i))
		}
		if e.Deliveries != 0 {
			return nil, off, fmt.Errorf("node %d: %s: offset %d has deliveries %d in a FETCH", l.id, line, e.Offset, e.Deliveries)
		}
	}
	if want := off + uint64(len(f.Entries)); f.Next != want {
		return nil, off, fmt.Errorf("node %d: %s: next %d after %d entries from %d, want %d", l.id, line, f.Next, len(f.Entries), off, want)
	}
	return f.Entries, f.Next, nil
}

// fetchAll FETCHes topic from off in pages of max until EMPTY.
func fetchAll(t testing.TB, l *logConn, topic string, off uint64, max int) []status.Entry {
	t.Helper()
	var out []status.Entry
	for range 100000 {
		page, next, err := fetchPage(l, topic, off, max)
		if err != nil {
			t.Fatal(err)
		}
		if page == nil {
			return out
		}
		out = append(out, page...)
		off = next
	}
	t.Fatalf("FETCH %s: still not EMPTY at %d", topic, off)
	return nil
}

// offsetsOf asks OFFSETS topic.
func offsetsOf(l *logConn, topic string) status.Offsets {
	l.t.Helper()
	var o status.Offsets
	l.json("OFFSETS "+topic, &o)
	if o.Topic != topic {
		l.t.Fatalf("OFFSETS %s: topic %q", topic, o.Topic)
	}
	return o
}

func committedOf(l *logConn, group, topic string) status.Committed {
	l.t.Helper()
	var c status.Committed
	l.json("COMMITTED "+group+" "+topic, &c)
	if c.Group != group || c.Topic != topic {
		l.t.Fatalf("COMMITTED %s %s: got group %q topic %q", group, topic, c.Group, c.Topic)
	}
	return c
}

// readGroup sends READ and returns its entries (nil at EMPTY). Anything
// but a READ document for group and topic or EMPTY is an error.
func readGroup(l *logConn, group, topic string, max int, ackWaitMs int) ([]status.Entry, error) {
	line := fmt.Sprintf("READ %s %s %d", group, topic, max)
	if ackWaitMs > 0 {
		line += " " + strconv.Itoa(ackWaitMs)
	}
	r, err := l.send(line)
	if err != nil {
		return nil, err
	}
	if r == "EMPTY" {
		return nil, nil
	}
	var rd status.Read
	if err := decodeStrict(r, &rd); err != nil {
		return nil, fmt.Errorf("node %d: %s: %w", l.id, line, err)
	}
	if rd.Group != group || rd.Topic != topic || len(rd.Entries) == 0 || len(rd.Entries) > max {
		return nil, fmt.Errorf("node %d: %s: group %q topic %q with %d entries", l.id, line, rd.Group, rd.Topic, len(rd.Entries))
	}
	for _, e := range rd.Entries {
		if e.Deliveries < 1 {
			return nil, fmt.Errorf("node %d: %s: offset %d has deliveries %d", l.id, line, e.Offset, e.Deliveries)
		}
	}
	return rd.Entries, nil
}

// ackLine is "ACK group topic o1 o2 ...".
func ackLine(group, topic string, es []status.Entry) string {
	var b strings.Builder
	b.WriteString("ACK " + group + " " + topic)
	for _, e := range es {
		b.WriteString(" " + strconv.FormatUint(e.Offset, 10))
	}
	return b.String()
}

// putPayloads PUTs payloads in order through l, failing on anything but OK.
func putPayloads(t testing.TB, l *logConn, topic string, payloads []string) {
	t.Helper()
	for _, p := range payloads {
		l.ok("PUT " + topic + " " + p)
	}
}

// payloadsOf lists the payloads of es.
func payloadsOf(es []status.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Payload
	}
	return out
}

// topicNames lists TOPICS of node l.
func topicNames(l *logConn) []string {
	l.t.Helper()
	var ts []status.TopicSummary
	l.json("TOPICS", &ts)
	out := make([]string, len(ts))
	for i, s := range ts {
		out[i] = s.Topic
	}
	return out
}

// waitGroupCommit waits until group offsets moved by ACKs up to now are
// committed through Raft on every running node: the batch interval
// (cursor_commit_ms, 100 ms) has passed three times and every node has
// applied what the Raft leader had appended by then.
func waitGroupCommit(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	since := time.Now()
	var target uint64
	testcluster.Eventually(t, 20*time.Second, func() error {
		if time.Since(since) < 300*time.Millisecond {
			return fmt.Errorf("batch interval not passed")
		}
		if target == 0 {
			l, err := c.RaftLeader()
			if err != nil {
				return err
			}
			m, err := c.Metrics(l)
			if err != nil {
				return err
			}
			target = m.LastLogIndex
		}
		for _, id := range c.RunningIDs() {
			m, err := c.Metrics(id)
			if err != nil {
				return err
			}
			if m.LastApplied < target {
				return fmt.Errorf("node %d applied %d of %d", id, m.LastApplied, target)
			}
		}
		return nil
	})
}

// logMonitor is TestLogCommands' rollover monitor period: short, so that
// segments roll often while readers are at the tail.
const logMonitor = 50 * time.Millisecond

// TestLogCommands runs the log commands that need no faults on one cluster with
// small segments (max_segment_entries 50, monitor 50 ms, rf 3 / ack 2):
// replay through FETCH, reads at the tail while segments roll, independent
// and shared consumer groups, SEEK, and bad input.
func TestLogCommands(t *testing.T) {
	skipShort(t)
	c := testcluster.Start(t, testcluster.Options{
		Nodes:             3,
		MaxSegmentEntries: rollEntries,
		MonitorInterval:   logMonitor,
		Extra:             map[string]any{"failure_timeout_ms": 1000, "replication_factor": 3, "ack_quorum": 2},
	})
	t.Run("replay", func(t *testing.T) { testLogReplay(t, c) })
	t.Run("right_after_register", func(t *testing.T) { testLogAfterRegister(t, c) })
	t.Run("tail_during_rollovers", func(t *testing.T) { testLogTailRollovers(t, c, false) })
	t.Run("tail_switching_nodes", func(t *testing.T) { testLogTailRollovers(t, c, true) })
	t.Run("two_groups", func(t *testing.T) { testLogTwoGroups(t, c) })
	t.Run("shared_group", func(t *testing.T) { testLogSharedGroup(t, c) })
	t.Run("seek", func(t *testing.T) { testLogSeek(t, c) })
	t.Run("bad_input", func(t *testing.T) { testLogBadInput(t, c) })
}

// produce runs one producer per node in ids, each PUTting n payloads
// "<prefix><k>-<seq>" from seq from on its own connection; it returns when
// all are done and reports the first failure.
func produce(c *testcluster.Cluster, topic, prefix string, ids []uint64, from, n int) error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for k, id := range ids {
		wg.Go(func() {
			l := &logConn{id: id, addr: c.Node(id).ClientAddr, timeout: 20 * time.Second}
			defer l.close()
			for s := from; s < from+n; s++ {
				line := fmt.Sprintf("PUT %s %s%d-%d", topic, prefix, k, s)
				r, err := l.send(line)
				if err == nil && r != "OK" {
					err = fmt.Errorf("node %d: %s: %q", id, line, r)
				}
				if err != nil {
					errs[k] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// checkProducerOrder checks that es holds, for every producer k < producers,
// payloads "<prefix><k>-0" .. "<prefix><k>-<per-1>" each once and in order.
func checkProducerOrder(t *testing.T, es []status.Entry, prefix string, producers, per int) {
	t.Helper()
	next := make([]int, producers)
	for _, e := range es {
		var k, s int
		if _, err := fmt.Sscanf(e.Payload, prefix+"%d-%d", &k, &s); err != nil || k < 0 || k >= producers {
			t.Fatalf("offset %d: payload %q is no producer's", e.Offset, e.Payload)
		}
		if s != next[k] {
			t.Fatalf("offset %d: producer %d's entry %d, want %d (PUT order lost, or an entry lost or repeated)", e.Offset, k, s, next[k])
		}
		next[k]++
	}
	for k, n := range next {
		if n != per {
			t.Errorf("producer %d: %d entries in the log, want %d", k, n, per)
		}
	}
}

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
			select {
			case err := <-produced:
				if err != nil {
					t.Fatal(err)
				}
				done = true
			default:
				return fmt.Errorf("producers still writing (replay at %d)", next)
			}
			return fmt.Errorf("producers done; one more FETCH to reach the end")
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
			select {
			case err := <-produced:
				if err != nil {
					t.Fatal(err)
				}
				done = true
			default:
				return fmt.Errorf("producers still writing (reader at %d)", next)
			}
			return fmt.Errorf("producers done; one more FETCH to reach the end")
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

// drainGroup READs topic for group through l (pages of max, default ack
// wait) and ACKs every page, until EMPTY. It returns the entries in
// delivery order.
func drainGroup(l *logConn, group, topic string, max, limit int) ([]status.Entry, error) {
	var got []status.Entry
	for range limit {
		es, err := readGroup(l, group, topic, max, 0)
		if err != nil {
			return got, err
		}
		if es == nil {
			return got, nil
		}
		got = append(got, es...)
		if r, err := l.send(ackLine(group, topic, es)); err != nil || r != "OK" {
			return got, fmt.Errorf("node %d: ACK of %d entries from %d: %q, %v", l.id, len(es), es[0].Offset, r, err)
		}
	}
	return got, fmt.Errorf("node %d: READ %s %s: not EMPTY after %d READs", l.id, group, topic, limit)
}

// two_groups: two groups read one topic (300 entries over several
// segments) at the same time through different nodes; each gets every
// entry exactly once, in order, with deliveries 1, and ends committed at
// the end with lag 0. A new entry then reaches both.
func testLogTwoGroups(t *testing.T, c *testcluster.Cluster) {
	const (
		topic = "twogroups"
		n     = 300
	)
	putPayloads(t, dialLog(t, c, 2), topic, seq("g", 0, n))
	log := fetchAll(t, dialLog(t, c, 3), topic, 0, 1000)
	if len(log) != n {
		t.Fatalf("FETCH: %d entries, want %d", len(log), n)
	}
	groups := []string{"alpha", "beta"}
	via := []uint64{c.Leader().ID, c.Follower().ID}
	got := make([][]status.Entry, len(groups))
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		l := dialLog(t, c, via[i])
		wg.Go(func() { got[i], errs[i] = drainGroup(l, g, topic, 7+10*i, 1000) })
	}
	wg.Wait()
	for i, g := range groups {
		if errs[i] != nil {
			t.Fatalf("group %s: %v", g, errs[i])
		}
		if len(got[i]) != n {
			t.Fatalf("group %s: %d entries, want %d", g, len(got[i]), n)
		}
		for j, e := range got[i] {
			want := log[j]
			want.Deliveries = 1
			if e != want {
				t.Fatalf("group %s: delivery %d is %+v, want %+v", g, j, e, want)
			}
		}
	}
	l := dialLog(t, c, 3)
	for _, g := range groups {
		if cm := committedOf(l, g, topic); cm.Offset != n || cm.Lag != 0 {
			t.Errorf("COMMITTED %s %s = %+v, want offset %d lag 0", g, topic, cm, n)
		}
	}
	var list []status.Group
	l.json("GROUPS "+topic, &list)
	want := []status.Group{{Group: "alpha", Topic: topic, Offset: n}, {Group: "beta", Topic: topic, Offset: n}}
	if !slices.Equal(list, want) {
		t.Errorf("GROUPS %s = %+v, want %+v", topic, list, want)
	}
	var all []status.Group
	l.json("GROUPS", &all)
	for _, w := range want {
		if !slices.Contains(all, w) {
			t.Errorf("GROUPS (all topics) = %+v, lacks %+v", all, w)
		}
	}
	l.ok("PUT " + topic + " g-late")
	for i, g := range groups {
		es, err := readGroup(dialLog(t, c, via[1-i]), g, topic, 10, 0)
		if err != nil || len(es) != 1 || es[0].Offset != n || es[0].Payload != "g-late" || es[0].Deliveries != 1 {
			t.Errorf("group %s after one more PUT: %+v, %v; want offset %d g-late", g, es, err, n)
		}
	}
}

// consumer is what one member of a shared group did.
type consumer struct {
	deliveries []status.Entry // every entry READ returned, in order
	acked      []uint64       // offsets it ACKed (OK)
	abandoned  []status.Entry // delivered and never ACKed on purpose
	err        error
}

// shared_group: three consumers of one group, on three nodes, share 400
// entries. Two (ack wait 10 s) READ and ACK until every entry is acked;
// the third acks two pages, then READs one page with a 500 ms ack wait
// and walks away. Its leases expire and the survivors get those entries
// again (deliveries 2). Every offset is acked exactly once across all
// ACKs, none is lost, and only the abandoned ones are delivered twice.
func testLogSharedGroup(t *testing.T, c *testcluster.Cluster) {
	const (
		topic = "shared"
		group = "workers"
		n     = 400
	)
	putPayloads(t, dialLog(t, c, 1), topic, seq("s", 0, n))
	log := fetchAll(t, dialLog(t, c, 2), topic, 0, 1000)
	if len(log) != n {
		t.Fatalf("FETCH: %d entries, want %d", len(log), n)
	}

	var (
		mu       sync.Mutex
		ackedBy  = map[uint64]int{} // offset -> how many ACKs named it
		ackCount int
	)
	recordAcks := func(es []status.Entry) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range es {
			if ackedBy[e.Offset] == 0 {
				ackCount++
			}
			ackedBy[e.Offset]++
		}
	}
	allAcked := func() bool { mu.Lock(); defer mu.Unlock(); return ackCount >= n }

	cons := make([]*consumer, 3)
	for i := range cons {
		cons[i] = &consumer{}
	}
	quitter := cons[2]
	started := make(chan struct{})
	deadline := time.Now().Add(45 * time.Second)
	var wg sync.WaitGroup
	// The quitter on node 3.
	lq := dialLog(t, c, 3)
	wg.Go(func() {
		defer close(started)
		for round := range 3 {
			wait := 10000
			if round == 2 {
				wait = 500
			}
			es, err := readGroup(lq, group, topic, 10, wait)
			if err == nil && es == nil {
				err = fmt.Errorf("READ round %d: EMPTY with %d entries unread", round, n)
			}
			if err != nil {
				quitter.err = err
				return
			}
			quitter.deliveries = append(quitter.deliveries, es...)
			if round == 2 {
				quitter.abandoned = es
				return
			}
			if r, err := lq.send(ackLine(group, topic, es)); err != nil || r != "OK" {
				quitter.err = fmt.Errorf("ACK: %q, %v", r, err)
				return
			}
			recordAcks(es)
			for _, e := range es {
				quitter.acked = append(quitter.acked, e.Offset)
			}
			if round == 0 {
				started <- struct{}{} // the survivors start while the quitter goes on
			}
		}
	})
	<-started
	for i, id := range []uint64{1, 2} {
		cn := cons[i]
		l := dialLog(t, c, id)
		wg.Go(func() {
			pace := time.NewTicker(20 * time.Millisecond)
			defer pace.Stop()
			for !allAcked() {
				if time.Now().After(deadline) {
					mu.Lock()
					cn.err = fmt.Errorf("node %d: %d of %d offsets acked after 45 s", id, ackCount, n)
					mu.Unlock()
					return
				}
				es, err := readGroup(l, group, topic, 10, 10000)
				if err != nil {
					cn.err = err
					return
				}
				if es == nil {
					<-pace.C // nothing leased to us now; wait for expired leases
					continue
				}
				cn.deliveries = append(cn.deliveries, es...)
				if r, err := l.send(ackLine(group, topic, es)); err != nil || r != "OK" {
					cn.err = fmt.Errorf("node %d: ACK: %q, %v", id, r, err)
					return
				}
				recordAcks(es)
				for _, e := range es {
					cn.acked = append(cn.acked, e.Offset)
				}
			}
		})
	}
	wg.Wait()
	for i, cn := range cons {
		if cn.err != nil {
			t.Fatalf("consumer %d: %v", i, cn.err)
		}
	}
	if len(quitter.abandoned) == 0 {
		t.Fatal("the quitter abandoned nothing")
	}
	abandoned := map[uint64]bool{}
	for _, e := range quitter.abandoned {
		abandoned[e.Offset] = true
	}
	for off := range uint64(n) {
		if k := ackedBy[off]; k != 1 {
			t.Errorf("offset %d acked %d times across the consumers, want exactly once", off, k)
		}
	}
	counts := map[uint64][]uint32{} // offset -> the deliveries of each time it was delivered
	redelivered := 0
	for i, cn := range cons {
		for _, e := range cn.deliveries {
			want := log[e.Offset]
			if e.Payload != want.Payload || e.TimestampMs != want.TimestampMs {
				t.Errorf("consumer %d: offset %d delivered as %+v, FETCH has %+v", i, e.Offset, e, want)
			}
			counts[e.Offset] = append(counts[e.Offset], e.Deliveries)
			if e.Deliveries > 1 {
				redelivered++
				if !abandoned[e.Offset] {
					t.Errorf("consumer %d: offset %d delivered %d times but it was never abandoned (its lease was 10 s)", i, e.Offset, e.Deliveries)
				}
			}
		}
	}
	for off := range uint64(n) {
		ds := slices.Sorted(slices.Values(counts[off]))
		for j, d := range ds {
			if d != uint32(j+1) {
				t.Errorf("offset %d delivered with deliveries %v, want 1..%d", off, ds, len(ds))
				break
			}
		}
		if len(ds) == 0 {
			t.Errorf("offset %d never delivered", off)
		}
		if abandoned[off] && len(ds) < 2 {
			t.Errorf("abandoned offset %d delivered %d times: its lease never came back", off, len(ds))
		}
	}
	t.Logf("acks: survivors %d + %d, quitter %d; %d abandoned, %d redeliveries", len(cons[0].acked), len(cons[1].acked), len(quitter.acked), len(abandoned), redelivered)
	l := dialLog(t, c, 2)
	if cm := committedOf(l, group, topic); cm.Offset != n || cm.Lag != 0 {
		t.Errorf("COMMITTED %s %s = %+v, want offset %d lag 0", group, topic, cm, n)
	}
	var list []status.Group
	l.json("GROUPS "+topic, &list)
	if want := []status.Group{{Group: group, Topic: topic, Offset: n}}; !slices.Equal(list, want) {
		t.Errorf("GROUPS %s = %+v, want %+v", topic, list, want)
	}
	if es, err := readGroup(l, group, topic, 10, 0); err != nil || es != nil {
		t.Errorf("READ after everything was acked: %+v, %v; want EMPTY", es, err)
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

// bad_input: malformed log commands over the wire get "ERR ..." (naming
// the usage where the arguments are wrong), unknown topics are not
// created by any log command, and the node keeps serving.
func testLogBadInput(t *testing.T, c *testcluster.Cluster) {
	const topic = "badlog"
	via := c.Follower().ID
	l := dialLog(t, c, via)
	putPayloads(t, l, topic, seq("b", 0, 5))
	usage := map[string]string{
		"OFFSETS":   "usage: OFFSETS <topic>",
		"SEEK":      "usage: SEEK <topic> <unix_ms>",
		"FETCH":     "usage: FETCH <topic> <offset> [max_entries]",
		"COMMIT":    "usage: COMMIT <group> <topic> <offset>",
		"COMMITTED": "usage: COMMITTED <group> <topic>",
		"READ":      "usage: READ <group> <topic> [max_entries] [ack_wait_ms]",
		"ACK":       "usage: ACK <group> <topic> <offset> [<offset>...]",
		"GROUPS":    "usage: GROUPS [<topic>]",
	}
	long := strings.Repeat("g", 300)
	usageCases := []string{
		"OFFSETS", "OFFSETS " + topic + " extra",
		"SEEK", "SEEK " + topic, "SEEK " + topic + " abc", "SEEK " + topic + " -5", "SEEK " + topic + " 1.5",
		"SEEK " + topic + " 1 2", "SEEK " + topic + " 99999999999999999999",
		"FETCH", "FETCH " + topic, "FETCH " + topic + " x", "FETCH " + topic + " -1", "FETCH " + topic + " 1e3",
		"FETCH " + topic + " 18446744073709551616", "FETCH " + topic + " 0 0", "FETCH " + topic + " 0 -1",
		"FETCH " + topic + " 0 10001", "FETCH " + topic + " 0 abc", "FETCH " + topic + " 0 10 extra",
		"COMMIT", "COMMIT g", "COMMIT g " + topic, "COMMIT g " + topic + " x", "COMMIT g " + topic + " -1",
		"COMMIT g " + topic + " 1 2", "COMMIT ../g " + topic + " 0", "COMMIT g/x " + topic + " 0", "COMMIT " + long + " " + topic + " 0",
		"COMMITTED", "COMMITTED g", "COMMITTED g " + topic + " x", "COMMITTED .. " + topic,
		"READ", "READ g", "READ g " + topic + " 0", "READ g " + topic + " 10001", "READ g " + topic + " -1",
		"READ g " + topic + " x", "READ g " + topic + " 10 0", "READ g " + topic + " 10 -1", "READ g " + topic + " 10 x",
		"READ g " + topic + " 10 43200001", "READ g " + topic + " 10 100 extra", "READ a/b " + topic,
		"ACK", "ACK g", "ACK g " + topic, "ACK g " + topic + " x", "ACK g " + topic + " -1", "ACK g " + topic + " 0 y",
		"ACK ../g " + topic + " 0", "ACK g " + topic + strings.Repeat(" 0", 10001),
		"GROUPS a b", "GROUPS ../x",
		"OFFSETS ../x", "FETCH a/b 0", "SEEK .. 0", "COMMITTED g ../x", "READ g a/b",
	}
	serving := func(after string) {
		t.Helper()
		var o status.Offsets
		l.json("OFFSETS "+topic, &o)
		if o.Latest != 5 {
			t.Fatalf("after %q: OFFSETS %s = %+v", after, topic, o)
		}
	}
	for _, line := range usageCases {
		r := l.do(line)
		cmd, _, _ := strings.Cut(line, " ")
		if !strings.HasPrefix(r, "ERR ") || !strings.Contains(r, usage[cmd]) {
			t.Errorf("%q: got %q, want ERR ... (%s)", abbrev(line), abbrev(r), usage[cmd])
		}
		serving(line)
	}

	// Well-formed requests the node must refuse, each with its message.
	exact := map[string]string{
		"FETCH " + topic + " 6":                   "ERR offset out of range (earliest 0, latest 5)",
		"FETCH " + topic + " 4611686018427387904": "ERR offset out of range (earliest 0, latest 5)",
		"COMMIT g " + topic + " 6":                "ERR offset out of range (earliest 0, latest 5)",
	}
	for line, want := range exact {
		if r := l.do(line); r != want {
			t.Errorf("%q: got %q, want %q", abbrev(line), r, want)
		}
		serving(line)
	}
	if r := l.do("FETCH " + topic + " 5"); r != "EMPTY" {
		t.Errorf("FETCH at latest: %q, want EMPTY", r)
	}
	// ACK of an offset never delivered (the group has read nothing), then
	// of one past what was delivered.
	if r := l.do("ACK fresh " + topic + " 0"); !strings.HasPrefix(r, "ERR ") || !strings.Contains(r, "never delivered") {
		t.Errorf("ACK before any READ: %q, want ERR ... never delivered", r)
	}
	if es, err := readGroup(l, "fresh", topic, 2, 0); err != nil || len(es) != 2 {
		t.Fatalf("READ fresh %s 2: %+v, %v", topic, es, err)
	}
	if r := l.do("ACK fresh " + topic + " 0 2"); !strings.HasPrefix(r, "ERR ") || !strings.Contains(r, "never delivered") {
		t.Errorf("ACK of a delivered and an undelivered offset: %q, want ERR ... never delivered", r)
	}
	if cm := committedOf(l, "fresh", topic); cm.Offset != -1 || cm.Lag != 5 {
		t.Errorf("COMMITTED after a refused ACK: %+v, want offset -1 (nothing acked) lag 5", cm)
	}
	l.ok("ACK fresh " + topic + " 0 1")
	if cm := committedOf(l, "fresh", topic); cm.Offset != 2 || cm.Lag != 3 {
		t.Errorf("COMMITTED after ACK 0 1: %+v, want offset 2 lag 3", cm)
	}
	l.ok("ACK fresh " + topic + " 0") // acked already: harmless

	// Unknown topics: every log command refuses and none creates it.
	unknown := map[string]string{
		"OFFSETS nosuch1":      "nosuch1",
		"SEEK nosuch2 0":       "nosuch2",
		"FETCH nosuch3 0":      "nosuch3",
		"FETCH nosuch4 0 10":   "nosuch4",
		"COMMIT g nosuch5 0":   "nosuch5",
		"COMMITTED g nosuch6":  "nosuch6",
		"READ g nosuch7":       "nosuch7",
		"READ g nosuch8 5 100": "nosuch8",
		"ACK g nosuch9 0":      "nosuch9",
		"GROUPS nosuch10":      "nosuch10",
	}
	for line, name := range unknown {
		if r := l.do(line); r != "ERR unknown topic "+name {
			t.Errorf("%q: got %q, want %q", line, r, "ERR unknown topic "+name)
		}
		serving(line)
	}
	for _, id := range c.IDs() {
		ln := dialLog(t, c, id)
		names := topicNames(ln)
		if !slices.Contains(names, topic) {
			t.Errorf("node %d TOPICS %v lacks %s", id, names, topic)
		}
		for _, name := range unknown {
			if slices.Contains(names, name) {
				t.Errorf("node %d: a log command created topic %s (TOPICS %v)", id, name, names)
			}
		}
	}
	// STATE of an unknown topic waits for a Raft catch-up (~250 ms): ask
	// each name once, rotating over the nodes.
	k := 0
	for _, name := range unknown {
		id := c.IDs()[k%3]
		k++
		if r := dialLog(t, c, id).do("STATE " + name); !strings.HasPrefix(r, "ERR ") {
			t.Errorf("node %d: STATE %s = %q, want ERR (never created)", id, name, abbrev(r))
		}
	}
	// The node still serves everything.
	l.ok("PUT " + topic + " b-after")
	if es := fetchAll(t, l, topic, 0, 100); len(es) != 6 || es[5].Payload != "b-after" {
		t.Errorf("FETCH after the bad input: %+v", es)
	}
	if !c.Running(via) {
		t.Fatalf("node %d died", via)
	}
}

// TestLogGroupOffsetsSurviveLeaderKill: committed group offsets (an
// explicit COMMIT as soon as it answered OK, and ACK-moved offsets once
// the commit batch ran) survive
// SIGKILL of the Raft leader, which coordinates the groups, and then a
// SIGKILL of the whole cluster and a restart from disk. READ after either
// starts at the committed offset, never below it.
func TestLogGroupOffsetsSurviveLeaderKill(t *testing.T) {
	skipShort(t)
	c := startReplCluster(t, nil)
	const (
		topic = "durable"
		n     = 200
	)
	leader := c.Leader().ID
	follower := c.Follower().ID
	putPayloads(t, dialLog(t, c, follower), topic, seq("d", 0, n))
	log := fetchAll(t, dialLog(t, c, follower), topic, 0, 1000)
	if len(log) != n {
		t.Fatalf("FETCH: %d entries, want %d", len(log), n)
	}

	// Explicit COMMIT through a follower (relayed), ACKs through the leader.
	lf := dialLog(t, c, follower)
	lf.ok("COMMIT explicit " + topic + " 120")
	if cm := committedOf(lf, "explicit", topic); cm.Offset != 120 || cm.Lag != n-120 {
		t.Fatalf("COMMITTED explicit = %+v, want 120 lag %d", cm, n-120)
	}
	ll := dialLog(t, c, leader)
	es, err := readGroup(ll, "acker", topic, 50, 0)
	if err != nil || len(es) != 50 || es[0].Offset != 0 {
		t.Fatalf("READ acker: %d entries, %v", len(es), err)
	}
	ll.ok(ackLine("acker", topic, es))
	// Leased and never acked: 50..69, redelivered after the leader change.
	if es, err := readGroup(ll, "acker", topic, 20, 0); err != nil || len(es) != 20 || es[0].Offset != 50 {
		t.Fatalf("READ acker 20: %+v, %v", es, err)
	}
	if cm := committedOf(ll, "acker", topic); cm.Offset != 50 {
		t.Fatalf("COMMITTED acker = %+v, want 50", cm)
	}
	waitGroupCommit(t, c)
	// COMMIT answers OK once Raft holds the offset: no wait before the kill.
	ll.ok("COMMIT instant " + topic + " 77")

	c.Kill(leader)
	survivors := others(c.IDs(), leader)
	newLeader := c.WaitLeader(survivors...)
	t.Logf("Raft leader %d killed; node %d leads", leader, newLeader)
	ls := dialLog(t, c, survivors[0])
	var cmExplicit, cmAcker, cmInstant status.Committed
	testcluster.Eventually(t, 20*time.Second, func() error {
		for g, dst := range map[string]*status.Committed{"explicit": &cmExplicit, "acker": &cmAcker, "instant": &cmInstant} {
			r, err := ls.send("COMMITTED " + g + " " + topic)
			if err != nil {
				return err
			}
			if err := decodeStrict(r, dst); err != nil {
				return err
			}
		}
		return nil
	})
	if cmExplicit.Offset != 120 {
		t.Errorf("after killing the Raft leader: COMMITTED explicit = %+v, want 120 (the last COMMIT)", cmExplicit)
	}
	if cmInstant.Offset != 77 {
		t.Errorf("after killing the Raft leader right after COMMIT instant %s 77 answered OK: COMMITTED instant = %+v, want 77", topic, cmInstant)
	}
	if cmAcker.Offset != 50 {
		t.Errorf("after killing the Raft leader: COMMITTED acker = %+v, want 50 (ACKed and batch-committed before the kill)", cmAcker)
	}
	checkReadFrom(t, ls, "acker", topic, uint64(max(cmAcker.Offset, 0)), log, 100)
	checkReadFrom(t, dialLog(t, c, survivors[1]), "explicit", topic, uint64(max(cmExplicit.Offset, 0)), log, 100)

	// Move both on the new leader: ACK 50..79 of the redelivered window,
	// COMMIT explicit to 150; bring the old leader back; wait for the
	// batch; then SIGKILL everything and restart from disk.
	ls.ok(ackLine("acker", topic, log[50:80]))
	ls.ok("COMMIT explicit " + topic + " 150")
	c.Restart(leader)
	c.WaitReady()
	waitGroupCommit(t, c)
	dialLog(t, c, c.Follower().ID).ok("COMMIT instant " + topic + " 99")
	for _, id := range c.IDs() {
		c.Kill(id)
	}
	c.RestartAll()
	l := dialLog(t, c, c.Follower().ID)
	testcluster.Eventually(t, 20*time.Second, func() error {
		for g, dst := range map[string]*status.Committed{"explicit": &cmExplicit, "acker": &cmAcker, "instant": &cmInstant} {
			r, err := l.send("COMMITTED " + g + " " + topic)
			if err != nil {
				return err
			}
			if err := decodeStrict(r, dst); err != nil {
				return err
			}
		}
		return nil
	})
	if cmExplicit.Offset != 150 {
		t.Errorf("after a full-cluster SIGKILL and restart: COMMITTED explicit = %+v, want 150", cmExplicit)
	}
	if cmInstant.Offset != 99 {
		t.Errorf("after a full-cluster SIGKILL right after COMMIT instant %s 99 answered OK: COMMITTED instant = %+v, want 99", topic, cmInstant)
	}
	if cmAcker.Offset != 80 {
		t.Errorf("after a full-cluster SIGKILL and restart: COMMITTED acker = %+v, want 80", cmAcker)
	}
	var list []status.Group
	l.json("GROUPS "+topic, &list)
	t.Logf("GROUPS after the restart: %+v", list)
	checkReadFrom(t, l, "acker", topic, uint64(max(cmAcker.Offset, 0)), log, 1000)
	checkReadFrom(t, l, "explicit", topic, uint64(max(cmExplicit.Offset, 0)), log, 1000)
	if got := fetchAll(t, l, topic, 0, 1000); !slices.Equal(got, log) {
		t.Errorf("FETCH after the restart: %d entries differing from before", len(got))
	}
}

// checkReadFrom READs group on topic once (up to max entries) and checks
// that it starts exactly at from (the committed offset: nothing below it
// comes back, nothing above it is skipped) and matches the log.
func checkReadFrom(t *testing.T, l *logConn, group, topic string, from uint64, log []status.Entry, max int) {
	t.Helper()
	var es []status.Entry
	testcluster.Eventually(t, 20*time.Second, func() error {
		var err error
		es, err = readGroup(l, group, topic, max, 0)
		return err
	})
	if es == nil {
		if from < uint64(len(log)) {
			t.Errorf("READ %s: EMPTY, want entries from %d", group, from)
		}
		return
	}
	for i, e := range es {
		if e.Offset < from {
			t.Errorf("READ %s: offset %d below the committed offset %d", group, e.Offset, from)
			return
		}
		if want := from + uint64(i); e.Offset != want || e.Payload != log[want].Payload {
			t.Errorf("READ %s: entry %d is %+v, want offset %d %q", group, i, e, want, log[want].Payload)
			return
		}
	}
}

// fetchWatcher FETCHes a topic's tail in a loop, remembering every entry
// it was given, and re-reads a window behind the tail each time to see
// whether anything it was given changed. It reads through the first node
// nodes() names and moves to the next one after a connection failure.
type fetchWatcher struct {
	mu      sync.Mutex
	seen    map[uint64]status.Entry
	next    uint64
	errs    int
	lastErr string
	bad     []string // entries that changed or disappeared under the watcher
	stop    chan struct{}
	done    chan struct{}
}

func startFetchWatcher(c *testcluster.Cluster, nodes func() []uint64, topic string) *fetchWatcher {
	w := &fetchWatcher{seen: map[uint64]status.Entry{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var l *logConn
		defer func() {
			if l != nil {
				l.close()
			}
		}()
		pace := time.NewTicker(10 * time.Millisecond)
		defer pace.Stop()
		pick := 0
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			if l == nil {
				ids := nodes()
				id := ids[pick%len(ids)]
				l = &logConn{id: id, addr: c.Node(id).ClientAddr, timeout: 20 * time.Second}
			}
			w.mu.Lock()
			next := w.next
			w.mu.Unlock()
			page, nx, err := fetchPage(l, topic, next, 50)
			if err == nil && page == nil {
				<-pace.C
				continue
			}
			if err == nil {
				w.record(page)
				w.mu.Lock()
				w.next = nx
				w.mu.Unlock()
				// Read back a window behind the tail.
				from := nx - min(nx, 40)
				var back []status.Entry
				back, _, err = fetchPage(l, topic, from, 40)
				if err == nil && back == nil {
					err = fmt.Errorf("node %d: FETCH %s %d: EMPTY below the %d entries already fetched", l.id, topic, from, nx)
				}
				if err == nil {
					w.record(back)
				}
			}
			if err != nil {
				w.mu.Lock()
				w.errs++
				w.lastErr = err.Error()
				if strings.Contains(err.Error(), "out of range") || strings.Contains(err.Error(), "EMPTY below") {
					w.bad = append(w.bad, fmt.Sprintf("after fetching up to %d: %v", next, err))
				}
				w.mu.Unlock()
				if !strings.Contains(err.Error(), `"ERR `) && !strings.Contains(err.Error(), "EMPTY below") {
					l.close() // a connection failure: try the next node
					l = nil
					pick++
				}
				<-pace.C
			}
		}
	}()
	return w
}

func (w *fetchWatcher) record(es []status.Entry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range es {
		if old, ok := w.seen[e.Offset]; ok && old != e {
			w.bad = append(w.bad, fmt.Sprintf("offset %d was %+v, now %+v", e.Offset, old, e))
			continue
		}
		w.seen[e.Offset] = e
	}
}

func (w *fetchWatcher) position() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

func (w *fetchWatcher) halt() { close(w.stop); <-w.done }

// TestLogFetchSegmentLeaderKill: FETCH only ever hands out entries the
// cluster keeps. Two writers PUT and a watcher FETCHes the tail through
// nodes other than the open segment's leader, which is SIGKILLed (round
// 1: a node that is not the Raft leader), restarted once writes resume,
// and then the new open segment's leader is killed too (round 2). After
// recovery, a full FETCH through every node holds every entry the watcher
// was ever given at the same offset with the same payload and time, every
// acknowledged PUT once and in writer order, and nothing no writer sent.
func TestLogFetchSegmentLeaderKill(t *testing.T) {
	skipShort(t)
	c := startReplCluster(t, nil)
	raftLeader := c.Leader().ID
	topic := ""
	for i := 0; topic == "" && i < 20; i++ {
		name := fmt.Sprintf("tail-%d", i)
		mustOK(t, c.Conn(raftLeader), "REGISTER "+name)
		if segmentLeader(t, c, raftLeader, name) != raftLeader {
			topic = name
		}
	}
	if topic == "" {
		t.Fatal("the Raft leader leads every new topic")
	}
	var (
		victimMu sync.Mutex
		victim   = segmentLeader(t, c, raftLeader, topic)
	)
	// Clients use the running nodes except the next victim.
	nodes := func() []uint64 {
		victimMu.Lock()
		defer victimMu.Unlock()
		return others(c.RunningIDs(), victim)
	}
	logs, stopWriters := loadGen(t, c, topic, "f", 2, nodes)
	watcher := startFetchWatcher(c, nodes, topic)
	stopped := false
	defer func() {
		if !stopped {
			stopWriters()
			watcher.halt()
		}
	}()
	for round := 1; round <= 2; round++ {
		from := watcher.position()
		testcluster.Eventually(t, 20*time.Second, func() error {
			if p := watcher.position(); p < from+100 {
				return fmt.Errorf("watcher at %d", p)
			}
			return nil
		})
		victimMu.Lock()
		v := victim
		victimMu.Unlock()
		at := watcher.position()
		before := []int{logs[0].ackCount(), logs[1].ackCount()}
		c.Kill(v)
		killed := time.Now()
		testcluster.Eventually(t, 30*time.Second, func() error {
			for i, l := range logs {
				if l.ackCount() < before[i]+50 {
					return fmt.Errorf("writer %d not resumed", i)
				}
			}
			return nil
		})
		t.Logf("round %d: segment leader %d killed with the watcher at offset %d; writes resumed after %v", round, v, at, time.Since(killed))
		c.Restart(v)
		c.WaitReady()
		if round == 1 {
			l, err := c.RaftLeader()
			if err != nil {
				t.Fatal(err)
			}
			next := segmentLeader(t, c, l, topic)
			victimMu.Lock()
			victim = next
			victimMu.Unlock()
		}
	}
	stopWriters()
	l := dialLog(t, c, others(c.IDs(), victim)[0])
	testcluster.Eventually(t, 30*time.Second, func() error {
		o := offsetsOf(l, topic)
		if p := watcher.position(); p != o.Latest {
			return fmt.Errorf("watcher at %d of %d", p, o.Latest)
		}
		return nil
	})
	watcher.halt()
	stopped = true

	final := fetchAll(t, l, topic, 0, 500)
	checkTail(t, final, watcher, logs)
	t.Logf("%d entries; watcher saw %d (%d FETCH errors, last %q)", len(final), len(watcher.seen), watcher.errs, watcher.lastErr)
	for _, id := range c.IDs() {
		if again := fetchAll(t, dialLog(t, c, id), topic, 0, 500); !slices.Equal(again, final) {
			t.Errorf("FETCH through node %d: %d entries differing from node %d's %d", id, len(again), l.id, len(final))
		}
	}
}

// checkTail checks the final log against what the watcher was given and
// what the writers were told.
func checkTail(t *testing.T, final []status.Entry, w *fetchWatcher, logs []*writerLog) {
	t.Helper()
	for _, b := range w.bad {
		t.Errorf("watcher: %s", b)
	}
	for off, e := range w.seen {
		if off >= uint64(len(final)) {
			t.Errorf("offset %d (%q) was FETCHed but the log now ends at %d", off, e.Payload, len(final))
			continue
		}
		if final[off] != e {
			t.Errorf("offset %d was FETCHed as %+v, the final log has %+v", off, e, final[off])
		}
	}
	at := map[string]uint64{}
	for _, e := range final {
		if prev, ok := at[e.Payload]; ok {
			t.Errorf("payload %q at offsets %d and %d", e.Payload, prev, e.Offset)
		}
		at[e.Payload] = e.Offset
		var k, s int
		if _, err := fmt.Sscanf(e.Payload, "fw%d-%d", &k, &s); err != nil || k < 0 || k >= len(logs) {
			t.Errorf("offset %d: payload %q is no writer's", e.Offset, e.Payload)
		}
	}
	for k, wl := range logs {
		wl.mu.Lock()
		acked := slices.Clone(wl.acked)
		wl.mu.Unlock()
		prev := int64(-1)
		for _, s := range acked {
			p := fmt.Sprintf("fw%d-%d", k, s)
			off, ok := at[p]
			if !ok {
				t.Errorf("writer %d: acknowledged PUT %q missing from the log", k, p)
				continue
			}
			if int64(off) <= prev {
				t.Errorf("writer %d: acknowledged PUT %q at offset %d, before the previous acknowledged one at %d", k, p, off, prev)
			}
			prev = int64(off)
		}
	}
}
