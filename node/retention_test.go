package node_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/status"
)

// segmentsHeld lists the segments of topic a node's store holds.
func segmentsHeld(t *testing.T, n *nodetest.Node, topic string) []uint64 {
	t.Helper()
	infos, err := n.Store.List(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var segs []uint64
	for _, i := range infos {
		segs = append(segs, i.ID.Segment)
	}
	return segs
}

func TestRetentionByEntriesDeletesEverywhere(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) {
		c.MaxSegmentEntries = 10
		c.RetentionInterval = 50 * time.Millisecond
		c.MonitorInterval = 50 * time.Millisecond
	})
	ctx := t.Context()
	c := nodetest.Dial(t, nodes[1])
	if got := do(t, c, "CREATE ret max_entries=25"); got != "OK" {
		t.Fatal(got)
	}
	// A group and the shared cursor that read nothing yet.
	if got := do(t, c, "COMMIT slow ret 0"); got != "OK" {
		t.Fatal(got)
	}
	for i := range 100 {
		if err := c.Put(ctx, "ret", fmt.Appendf(nil, "r%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Retention settles once the oldest sealed segment is needed to keep
	// 25 entries (nothing more is written). How many segments that leaves
	// depends on how far past 10 entries each one got before its rollover
	// (on a loaded machine: 37, then 20), so only Kafka's rule is checked.
	var (
		off status.Offsets
		st  status.State
	)
	nodetest.Eventually(t, 20*time.Second, "retention settled", func() bool {
		st = nodetest.State(t, c, "ret")
		off = decode[status.Offsets](t, c, "OFFSETS ret")
		if off.Earliest == 0 || st.Earliest != off.Earliest {
			return false
		}
		oldest := ^uint64(0)
		for k := range st.SealedSegments {
			n, _ := strconv.ParseUint(k, 10, 64)
			oldest = min(oldest, n)
		}
		count := st.SealedSegments[strconv.FormatUint(oldest, 10)]
		return oldest == ^uint64(0) || off.Latest-off.Earliest-count < 25
	})
	if off.Latest != 100 || off.Latest-off.Earliest < 25 {
		t.Fatalf("offsets %+v: fewer than max_entries kept", off)
	}
	// The files of deleted segments are gone from every replica.
	nodetest.Eventually(t, 10*time.Second, "files deleted on every node", func() bool {
		for _, n := range nodes {
			for _, s := range segmentsHeld(t, n, "ret") {
				if s < st.CurrentSegment-uint64(len(st.SealedSegments)) {
					return false
				}
			}
		}
		return true
	})
	if st.Earliest != off.Earliest || st.Retention.MaxEntries != 25 {
		t.Fatalf("STATE %+v", st)
	}
	if got := do(t, c, "FETCH ret 0"); !strings.HasPrefix(got, "ERR offset out of range (earliest ") {
		t.Fatalf("FETCH below earliest: %s", got)
	}
	f := decode[status.Fetch](t, c, fmt.Sprintf("FETCH ret %d 1000", off.Earliest))
	for i, e := range f.Entries {
		if e.Payload != fmt.Sprintf("r%03d", off.Earliest+uint64(i)) {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	// GET and the group go on from the earliest entry and say what they skipped.
	if p, ok, err := c.Get(ctx, "ret"); err != nil || !ok || string(p) < fmt.Sprintf("r%03d", off.Earliest) {
		t.Fatalf("GET after retention: %q %v %v", p, ok, err)
	}
	cm := decode[status.Committed](t, c, "COMMITTED slow ret")
	if cm.Offset < int64(off.Earliest) || cm.Skipped < off.Earliest {
		t.Fatalf("group after retention: %+v", cm)
	}
	r := decode[status.Read](t, c, "READ slow ret 1")
	if r.Entries[0].Offset < off.Earliest {
		t.Fatalf("READ below earliest: %+v", r)
	}
	// ALTER removes the limit: nothing more is deleted.
	if got := do(t, c, "ALTER ret max_entries=0"); got != "OK" {
		t.Fatal(got)
	}
	if st := nodetest.State(t, c, "ret"); st.Retention != (status.Retention{}) {
		t.Fatalf("retention after ALTER %+v", st.Retention)
	}
}

func TestDeleteTopicAndRecreate(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) {
		c.MaxSegmentEntries = 5
		c.RetentionInterval = 50 * time.Millisecond
		c.MonitorInterval = 50 * time.Millisecond
	})
	ctx := t.Context()
	c := nodetest.Dial(t, nodes[2])
	for i := range 12 {
		if err := c.Put(ctx, "gone", fmt.Appendf(nil, "old-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := do(t, c, "READ g gone 3"); !strings.HasPrefix(got, "{") {
		t.Fatal(got)
	}
	// The shared cursor has prefetched the old topic's entries.
	if p, ok, err := c.Get(ctx, "gone"); err != nil || !ok || string(p) != "old-0" {
		t.Fatalf("GET before DELETE: %q %v %v", p, ok, err)
	}
	if got := do(t, c, "DELETE gone"); got != "OK" {
		t.Fatal(got)
	}
	nodetest.Eventually(t, 10*time.Second, "files deleted on every node", func() bool {
		for _, n := range nodes {
			if len(segmentsHeld(t, n, "gone")) > 0 {
				return false
			}
		}
		return true
	})
	if got := do(t, c, "FETCH gone 0"); got != "ERR unknown topic gone" {
		t.Fatalf("FETCH after DELETE: %s", got)
	}
	if got := do(t, c, "DELETE gone"); got != "ERR unknown topic gone" {
		t.Fatalf("DELETE again: %s", got)
	}
	if err := c.Put(ctx, "gone", []byte("new-0")); err != nil {
		t.Fatal(err)
	}
	f := decode[status.Fetch](t, c, "FETCH gone 0")
	if len(f.Entries) != 1 || f.Entries[0].Payload != "new-0" || f.Entries[0].Offset != 0 {
		t.Fatalf("re-created topic: %+v", f)
	}
	if p, ok, err := c.Get(ctx, "gone"); err != nil || !ok || string(p) != "new-0" {
		t.Fatalf("GET of the re-created topic: %q %v %v", p, ok, err)
	}
	if got := do(t, c, "GROUPS gone"); got != "[]" {
		t.Fatalf("groups survived DELETE: %s", got)
	}
}

// TestAgeRetentionOnAQuietTopic: a segment rolls over by age, so an age
// limit empties a topic nobody writes to any more.
func TestAgeRetentionOnAQuietTopic(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) {
		c.MaxSegmentAge = 200 * time.Millisecond
		c.MonitorInterval = 50 * time.Millisecond
		c.RetentionInterval = 50 * time.Millisecond
	})
	ctx := t.Context()
	c := nodetest.Dial(t, nodes[0])
	if got := do(t, c, "CREATE quiet max_age_ms=600"); got != "OK" {
		t.Fatal(got)
	}
	for i := range 5 {
		if err := c.Put(ctx, "quiet", fmt.Appendf(nil, "q%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.Eventually(t, 20*time.Second, "the quiet topic emptied by age", func() bool {
		off := decode[status.Offsets](t, c, "OFFSETS quiet")
		return off.Earliest == 5 && off.Latest == 5
	})
	if got := do(t, c, "FETCH quiet 5"); got != "EMPTY" {
		t.Fatalf("FETCH at latest: %s", got)
	}
	if err := c.Put(ctx, "quiet", []byte("again")); err != nil {
		t.Fatal(err)
	}
	if f := decode[status.Fetch](t, c, "FETCH quiet 5"); len(f.Entries) != 1 || f.Entries[0].Payload != "again" {
		t.Fatalf("after: %+v", f)
	}
}
