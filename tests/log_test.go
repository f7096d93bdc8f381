package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// consumer is what one member of a shared group did.
type consumer struct {
	deliveries []status.Entry // every entry READ returned, in order
	acked      []uint64       // offsets it ACKed (OK)
	abandoned  []status.Entry // delivered and never ACKed on purpose
	err        error
}
