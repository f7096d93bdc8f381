package node_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/wire"
)

// TestDiskFullLeader: a segment leader whose disk is full answers PUT,
// local or forwarded, with exactly "ERR disk full on node <id>: ..."; GET
// and FETCH of what was stored keep working; once space is freed PUTs
// succeed again without a restart, and nothing acknowledged is lost.
func TestDiskFullLeader(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, nil)
	c := nodetest.Dial(t, nodes[0])
	for i := range 5 {
		if got := do(t, c, fmt.Sprintf("PUT df before-%d", i)); got != "OK" {
			t.Fatalf("PUT before: %s", got)
		}
	}
	rt, ok := nodes[0].Metadata().Route("df")
	if !ok {
		t.Fatal("no route for df")
	}
	leader := nodes[rt.Leader-1]
	var other *nodetest.Node
	for _, n := range nodes {
		if n != leader {
			other = n
		}
	}
	leader.Faults().DiskFull(true)

	want := fmt.Sprintf("ERR disk full on node %d: %s free, %s required", rt.Leader,
		wire.FormatBytes(nodetest.DiskFreeBytes), wire.FormatBytes(256<<20))
	// The guard notices within its refresh period; PUTs acknowledged
	// until then are kept.
	probes := 0
	nodetest.Eventually(t, 5*time.Second, "PUT refused as disk full", func() bool {
		if do(t, c, fmt.Sprintf("PUT df probe-%d", probes)) == "OK" {
			probes++
			return false
		}
		return true
	})
	for _, n := range []*nodetest.Node{leader, other} {
		if got := do(t, nodetest.Dial(t, n), "PUT df refused"); got != want {
			t.Fatalf("PUT through node %d: %q, want %q", n.Config.NodeID, got, want)
		}
	}
	// Reads and replays go on.
	if got := do(t, c, "GET df"); got != "before-0" {
		t.Fatalf("GET while full: %q", got)
	}
	entries := fetchAll(t, c, "df", 100)
	for i, e := range entries {
		if string(e.Payload) == "refused" {
			t.Fatalf("a refused entry was stored at %d", i)
		}
	}
	if len(entries) != 5+probes {
		t.Fatalf("FETCH while full: %d entries, want %d acknowledged", len(entries), 5+probes)
	}
	if got := do(t, c, "METRICS"); len(got) < 2 || got[0] != '{' {
		t.Fatalf("METRICS while full: %q", got)
	}

	leader.Faults().DiskFull(false)
	nodetest.Eventually(t, 10*time.Second, "PUT accepted after space was freed", func() bool {
		return do(t, c, "PUT df after") == "OK"
	})
	entries = fetchAll(t, c, "df", 100)
	for i := range 5 {
		if string(entries[i].Payload) != fmt.Sprintf("before-%d", i) {
			t.Fatalf("entry %d = %q after recovery", i, entries[i].Payload)
		}
	}
	if last := entries[len(entries)-1]; string(last.Payload) != "after" {
		t.Fatalf("last entry %q, want after", last.Payload)
	}
}

// TestDiskFullFollower: a follower on a full disk refuses its replica
// appends; the segment leader keeps acknowledging with the rest of the
// ack quorum, and the follower catches up once space is freed.
func TestDiskFullFollower(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, nil)
	c := nodetest.Dial(t, nodes[0])
	if got := do(t, c, "PUT dff first"); got != "OK" {
		t.Fatalf("PUT: %s", got)
	}
	rt, _ := nodes[0].Metadata().Route("dff")
	set, _, _ := nodes[0].Metadata().SegmentReplicas("dff", rt.Segment)
	if len(set) != 3 {
		t.Fatalf("replica set %v, want 3 nodes", set)
	}
	follower := nodes[set[2]-1]
	follower.Faults().DiskFull(true)
	n := 1
	nodetest.Eventually(t, 5*time.Second, "the follower refusing replica appends", func() bool {
		if got := do(t, c, "PUT dff probe"); got != "OK" {
			t.Fatalf("PUT with one follower's disk full: %s", got)
		}
		n++
		return testutil.ToFloat64(follower.Metrics().DiskFullRefusals) > 0
	})
	stuck := follower.Count(t, "dff", rt.Segment)
	for i := range 20 {
		if got := do(t, c, fmt.Sprintf("PUT dff full-%d", i)); got != "OK" {
			t.Fatalf("PUT %d with one follower's disk full: %s", i, got)
		}
	}
	n += 20
	if got := follower.Count(t, "dff", rt.Segment); got != stuck {
		t.Fatalf("the full follower went from %d to %d entries", stuck, got)
	}
	if v := testutil.ToFloat64(follower.Metrics().DiskFull); v != 1 {
		t.Fatalf("walrus_disk_full on the follower = %v", v)
	}
	// Its heartbeats say so: the open segment shows under-replicated.
	key := strconv.FormatUint(rt.Segment, 10)
	nodetest.Eventually(t, 10*time.Second, "segment under-replicated in STATE", func() bool {
		return slices.Contains(nodetest.State(t, c, "dff").UnderReplicated[key], follower.Config.NodeID)
	})
	follower.Faults().DiskFull(false)
	nodetest.Eventually(t, 15*time.Second, "freed follower caught up", func() bool {
		return follower.Count(t, "dff", rt.Segment) >= uint64(n)
	})
	nodetest.Eventually(t, 10*time.Second, "segment no longer under-replicated", func() bool {
		return len(nodetest.State(t, c, "dff").UnderReplicated[key]) == 0
	})
}
