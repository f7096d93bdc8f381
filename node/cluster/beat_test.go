package cluster

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/wire"
)

// TestHeartbeatDeltasMergeAndFullReplaces: a delta heartbeat updates only
// the segments it lists, a full one replaces the list (a lease given up
// drops out), and an older report arriving late never lowers a count.
func TestHeartbeatDeltasMergeAndFullReplaces(t *testing.T) {
	c := New(Config{Self: metadata.Node{ID: 1}, FailureTimeout: time.Second}, Deps{Logger: slog.New(slog.DiscardHandler)})
	open := func(kv ...any) []wire.OpenSegment {
		var out []wire.OpenSegment
		for i := 0; i < len(kv); i += 3 {
			out = append(out, wire.OpenSegment{Topic: kv[i].(string), Segment: uint64(kv[i+1].(int)), Count: uint64(kv[i+2].(int))})
		}
		return out
	}
	c.Record(&wire.Heartbeat{ID: 2, Open: open("a", 1, 10, "b", 3, 5)})
	c.Record(&wire.Heartbeat{ID: 2, Delta: true, Open: open("a", 1, 12)})
	if a, b := c.ReportedCount(2, "a", 1), c.ReportedCount(2, "b", 3); a != 12 || b != 5 {
		t.Fatalf("after a delta: a=%d b=%d, want 12 5", a, b)
	}
	c.Record(&wire.Heartbeat{ID: 2, Delta: true, Open: open("a", 1, 11)}) // late
	if a := c.ReportedCount(2, "a", 1); a != 12 {
		t.Fatalf("a late report lowered the count to %d", a)
	}
	c.Record(&wire.Heartbeat{ID: 2, Delta: true, Open: open("a", 2, 1)}) // rolled over
	if a1, a2 := c.ReportedCount(2, "a", 1), c.ReportedCount(2, "a", 2); a1 != 0 || a2 != 1 {
		t.Fatalf("after a rollover: segment 1 %d, segment 2 %d; want 0 1", a1, a2)
	}
	if got := c.TopicsAtLeast(5); !slices.Equal(sorted(got), []string{"b"}) {
		t.Fatalf("topics at least 5: %v", got)
	}
	c.Record(&wire.Heartbeat{ID: 2, Open: open("a", 2, 4)}) // full: b's lease is gone
	if b := c.ReportedCount(2, "b", 3); b != 0 {
		t.Fatalf("a full heartbeat kept a segment it does not list: b=%d", b)
	}
	if a := c.ReportedCount(2, "a", 2); a != 4 {
		t.Fatalf("a=%d after the full heartbeat, want 4", a)
	}
}

func sorted(s []string) []string { slices.Sort(s); return s }
