package node_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/status"
)

// do sends one command line and returns the reply as text ("OK", "EMPTY",
// "ERR ...", or the JSON).
func do(t *testing.T, c *client.Client, line string) string {
	t.Helper()
	r, err := c.DoLine(t.Context(), line)
	var se *client.ServerError
	if errors.As(err, &se) {
		return "ERR " + se.Message
	}
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	switch r.Kind {
	case protocol.ReplyOK:
		return "OK"
	case protocol.ReplyEmpty:
		return "EMPTY"
	case protocol.ReplyErr:
		return "ERR " + string(r.Body)
	}
	return string(r.Body)
}

func decode[T any](t *testing.T, c *client.Client, line string) T {
	t.Helper()
	raw := do(t, c, line)
	var v T
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("%s: %q: %v", line, raw, err)
	}
	return v
}

// fetchAll replays a topic from offset 0 in pages of page entries.
func fetchAll(t *testing.T, c *client.Client, topic string, page int) []status.Entry {
	t.Helper()
	var out []status.Entry
	for off := uint64(0); ; {
		raw := do(t, c, fmt.Sprintf("FETCH %s %d %d", topic, off, page))
		if raw == "EMPTY" {
			return out
		}
		var f status.Fetch
		if err := json.Unmarshal([]byte(raw), &f); err != nil {
			t.Fatalf("fetch at %d: %q", off, raw)
		}
		if len(f.Entries) == 0 || f.Entries[0].Offset != off || f.Next != off+uint64(len(f.Entries)) {
			t.Fatalf("fetch at %d: next %d, %d entries", off, f.Next, len(f.Entries))
		}
		out = append(out, f.Entries...)
		off = f.Next
	}
}

func TestFetchReplaysAcrossSegments(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) { c.MaxSegmentEntries = 10 })
	ctx := t.Context()
	cs := []*client.Client{nodetest.Dial(t, nodes[0]), nodetest.Dial(t, nodes[1]), nodetest.Dial(t, nodes[2])}
	const n = 55
	for i := range n {
		if err := cs[i%3].Put(ctx, "replay", fmt.Appendf(nil, "e%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.Eventually(t, 10*time.Second, "rollovers", func() bool {
		return nodetest.State(t, cs[0], "replay").CurrentSegment >= 3
	})
	first := fetchAll(t, cs[0], "replay", 7)
	if len(first) != n {
		t.Fatalf("replayed %d entries, want %d", len(first), n)
	}
	for i, e := range first {
		if e.Payload != fmt.Sprintf("e%02d", i) || e.Offset != uint64(i) || e.TimestampMs <= 0 || (i > 0 && e.TimestampMs < first[i-1].TimestampMs) {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	for _, c := range cs[1:] {
		if again := fetchAll(t, c, "replay", 13); !slices.Equal(again, first) {
			t.Fatalf("replay from another node differs")
		}
	}
	off := decode[status.Offsets](t, cs[1], "OFFSETS replay")
	if off.Earliest != 0 || off.Latest != n {
		t.Fatalf("offsets %+v", off)
	}
	if got := do(t, cs[2], "FETCH replay 56"); got != "ERR offset out of range (earliest 0, latest 55)" {
		t.Fatalf("past latest: %s", got)
	}
	// SEEK agrees with the times FETCH returns.
	for _, i := range []int{0, 9, 10, 31, 54} {
		s := decode[status.Seek](t, cs[i%3], fmt.Sprintf("SEEK replay %d", first[i].TimestampMs))
		want := slices.IndexFunc(first, func(e status.Entry) bool { return e.TimestampMs >= first[i].TimestampMs })
		if s.Offset != uint64(want) {
			t.Fatalf("SEEK to entry %d's time: %d, want %d", i, s.Offset, want)
		}
	}
	if s := decode[status.Seek](t, cs[0], "SEEK replay 99999999999999"); s.Offset != n {
		t.Fatalf("SEEK future = %d", s.Offset)
	}
	// GET still hands each entry out once, without the record header.
	if p, ok, err := cs[1].Get(ctx, "replay"); err != nil || !ok || string(p) != "e00" {
		t.Fatalf("GET: %q %v %v", p, ok, err)
	}
}

func TestGroupsLeaseAckAndRedeliver(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) { c.MaxSegmentEntries = 8 })
	ctx := t.Context()
	leader := nodetest.RaftLeader(t, nodes)
	var other *nodetest.Node
	for _, n := range nodes {
		if n != leader {
			other = n
		}
	}
	c := nodetest.Dial(t, other)
	for i := range 20 {
		if err := c.Put(ctx, "grp", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := do(t, c, "COMMITTED g grp"); got != `{"group":"g","topic":"grp","offset":-1,"lag":20,"skipped":0}` {
		for _, n := range nodes {
			tp, _ := n.Metadata().Topic("grp")
			t.Logf("node %d: current %d leader %d leaders %v sealed %v applied %d", n.ID(), tp.CurrentSegment, tp.LeaderNode, tp.SegmentLeaders, tp.SealedSegments, n.Consensus().Raft().AppliedIndex())
		}
		t.Fatalf("fresh group: %s", got)
	}
	r := decode[status.Read](t, c, "READ g grp 5 300")
	if len(r.Entries) != 5 || r.Entries[0].Offset != 0 || r.Entries[0].Deliveries != 1 {
		t.Fatalf("first read %+v", r)
	}
	// A second reader of the group gets the next entries, not the leased ones.
	r2 := decode[status.Read](t, c, "READ g grp 5 60000")
	if r2.Entries[0].Offset != 5 {
		t.Fatalf("second read starts at %d", r2.Entries[0].Offset)
	}
	if got := do(t, c, "ACK g grp 5 6 7 8 9 5"); got != "OK" {
		t.Fatalf("ack: %s", got)
	}
	if got := do(t, c, "ACK g grp 12"); !strings.HasPrefix(got, "ERR offset 12 was never delivered") {
		t.Fatalf("ack of undelivered: %s", got)
	}
	// The rest, acked; then only entries 0..4 remain unacked: their lease
	// ends and they come back.
	rest := decode[status.Read](t, c, "READ g grp 100 60000")
	if len(rest.Entries) != 10 || rest.Entries[0].Offset != 10 {
		t.Fatalf("rest %+v", rest)
	}
	if got := do(t, c, "ACK g grp 10 11 12 13 14 15 16 17 18 19"); got != "OK" {
		t.Fatal(got)
	}
	var again status.Read
	nodetest.Eventually(t, 10*time.Second, "redelivery", func() bool {
		raw := do(t, c, "READ g grp 5 60000")
		return raw != "EMPTY" && json.Unmarshal([]byte(raw), &again) == nil
	})
	if again.Entries[0].Offset != 0 || again.Entries[0].Deliveries != 2 || len(again.Entries) != 5 {
		t.Fatalf("redelivered %+v", again)
	}
	if got := do(t, c, "ACK g grp 0 1 2 3 4"); got != "OK" {
		t.Fatal(got)
	}
	if got := decode[status.Committed](t, c, "COMMITTED g grp"); got.Offset != 20 || got.Lag != 0 {
		t.Fatalf("committed %+v", got)
	}
	// Rewind g to 10 so a new coordinator has something to deliver.
	if got := do(t, c, "COMMIT g grp 10"); got != "OK" {
		t.Fatal(got)
	}
	// Another group is independent.
	if r := decode[status.Read](t, c, "READ h grp 100"); len(r.Entries) != 20 {
		t.Fatalf("group h read %d", len(r.Entries))
	}
	if got := do(t, c, "ACK h grp 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19"); got != "OK" {
		t.Fatal(got)
	}
	// The batched commit reaches every node's metadata; a new coordinator
	// continues from it.
	nodetest.Eventually(t, 10*time.Second, "group offset committed", func() bool {
		for _, n := range nodes {
			if off, ok := n.Metadata().GroupOffset("grp", "g"); !ok || off != 10 {
				return false
			}
			if off, ok := n.Metadata().GroupOffset("grp", "h"); !ok || off != 20 {
				return false
			}
		}
		return true
	})
	if err := leader.Consensus().Raft().LeadershipTransfer().Error(); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 10*time.Second, "new leader", func() bool {
		for _, n := range nodes {
			if n != leader && n.IsRaftLeader() {
				return true
			}
		}
		return false
	})
	var after status.Read
	nodetest.Eventually(t, 10*time.Second, "read after leader change", func() bool {
		raw := do(t, c, "READ g grp 100")
		return json.Unmarshal([]byte(raw), &after) == nil
	})
	if after.Entries[0].Offset != 10 || len(after.Entries) != 10 {
		t.Fatalf("after leader change: first %d, %d entries", after.Entries[0].Offset, len(after.Entries))
	}
	// COMMIT rewinds and is durable when it answers.
	if got := do(t, c, "COMMIT g grp 3"); got != "OK" {
		t.Fatal(got)
	}
	for _, n := range nodes {
		nodetest.Eventually(t, 5*time.Second, "commit applied", func() bool {
			off, _ := n.Metadata().GroupOffset("grp", "g")
			return off == 3
		})
	}
	if got := do(t, c, "COMMIT g grp 21"); got != "ERR offset out of range (earliest 0, latest 20)" {
		t.Fatalf("commit past latest: %s", got)
	}
	groups := decode[[]status.Group](t, c, "GROUPS grp")
	if len(groups) != 2 || groups[0].Group != "g" || groups[0].Offset != 3 || groups[0].Lag != 17 || groups[1].Group != "h" || groups[1].Offset != 20 {
		t.Fatalf("groups %+v", groups)
	}
}

func TestLogCommandsBadInput(t *testing.T) {
	nodes := nodetest.StartCluster(t, 1, nil)
	c := nodetest.Dial(t, nodes[0])
	if err := c.Put(t.Context(), "ok", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for line, want := range map[string]string{
		"FETCH nope 0":      "ERR unknown topic nope",
		"OFFSETS nope":      "ERR unknown topic nope",
		"SEEK nope 1":       "ERR unknown topic nope",
		"READ g nope":       "ERR unknown topic nope",
		"COMMIT g nope 0":   "ERR unknown topic nope",
		"COMMITTED g nope":  "ERR unknown topic nope",
		"GROUPS nope":       "ERR unknown topic nope",
		"FETCH ok":          "ERR FETCH takes a topic, an offset and optionally a maximum (usage: FETCH <topic> <offset> [max_entries])",
		"FETCH ok -1":       `ERR offset "-1" is not a non-negative integer (usage: FETCH <topic> <offset> [max_entries])`,
		"FETCH ok 0 0":      `ERR max_entries "0" must be 1..10000 (usage: FETCH <topic> <offset> [max_entries])`,
		"FETCH ok 2":        "ERR offset out of range (earliest 0, latest 1)",
		"FETCH ok 1":        "EMPTY",
		"READ g/x ok":       "ERR invalid group name",
		"ACK g ok 0":        "ERR offset 0 was never delivered",
		"READ g ok 1 0":     "ERR ack_wait_ms",
		"COMMITTED g ok x":  "ERR COMMITTED takes a group and a topic",
		"GROUPS a b":        "ERR GROUPS takes at most one topic",
		"SEEK ok yesterday": "ERR time \"yesterday\" is not a Unix time",
	} {
		if got := do(t, c, line); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %s, want %s...", line, got, want)
		}
	}
	if _, ok := nodes[0].Metadata().Topic("nope"); ok {
		t.Fatal("a read created the topic")
	}
	if got := do(t, c, "GROUPS"); got != "[]" {
		t.Fatalf("no groups: %s", got)
	}
}
