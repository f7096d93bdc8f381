package node_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/record"
	"github.com/walrus-go/walrus/node/status"
)

type replState struct {
	status.State
	Replicas          map[string][]uint64 `json:"replicas"`
	ReplicationFactor int                 `json:"replication_factor"`
	AckQuorum         int                 `json:"ack_quorum"`
	UnderReplicated   map[string][]uint64 `json:"under_replicated"`
}

func replStateOf(t testing.TB, c *client.Client, topic string) replState {
	t.Helper()
	raw, err := c.State(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var s replState
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("state %s: %v", raw, err)
	}
	return s
}

func countOn(tn *nodetest.Node, topic string, seg uint64) uint64 {
	c, _ := countOf(tn, topic, seg)
	return c
}

// topicLedBy registers topics on c until one's first segment is led by a
// node for which want returns true.
func topicLedBy(t testing.TB, c *client.Client, prefix string, want func(leader uint64) bool) (string, replState) {
	t.Helper()
	for i := 0; i < 50; i++ {
		name := prefix + strconv.Itoa(i)
		if err := c.Register(t.Context(), name); err != nil {
			t.Fatal(err)
		}
		if st := replStateOf(t, c, name); want(st.LeaderNode) {
			return name, st
		}
	}
	t.Fatal("no topic with the wanted leader")
	return "", replState{}
}

// TestReplicatedQuorumAck: with rf 3 / ack 2 every acknowledged PUT is
// already stored on at least two nodes, and all three converge.
func TestReplicatedQuorumAck(t *testing.T) {
	t.Parallel() // no failure detection involved: safe to overlap
	nodes := nodetest.StartCluster(t, 3, nil)
	ctx := t.Context()
	c := nodetest.Dial(t, nodes[0])
	topic, st := topicLedBy(t, c, "q-", func(uint64) bool { return true })
	set := st.Replicas["1"]
	if len(set) != 3 || set[0] != st.LeaderNode || st.ReplicationFactor != 3 || st.AckQuorum != 2 {
		t.Fatalf("STATE = %+v", st)
	}
	const n = 40
	for i := range n {
		if err := c.Put(ctx, topic, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		holders := 0
		for _, tn := range nodes {
			if countOn(tn, topic, 1) >= uint64(i+1) {
				holders++
			}
		}
		if holders < 2 {
			t.Fatalf("entry %d acknowledged while only %d node(s) hold it", i, holders)
		}
	}
	nodetest.Eventually(t, 10*time.Second, "all replicas hold every entry", func() bool {
		for _, tn := range nodes {
			if countOn(tn, topic, 1) != n {
				return false
			}
		}
		return true
	})
	for _, tn := range nodes {
		got, err := tn.Store.Read(ctx, engine.SegmentID{Topic: topic, Segment: 1}, 0, n, 1<<20)
		if err != nil || len(got) != n {
			t.Fatalf("node %d read: %d entries, %v", tn.ID(), len(got), err)
		}
		for i, stored := range got {
			// Every replica stores the leader's record: same time, payload.
			ts, p, err := record.Decode(stored, true)
			if err != nil || string(p) != strconv.Itoa(i) || ts <= 0 {
				t.Fatalf("node %d entry %d = %q (%v)", tn.ID(), i, stored, err)
			}
		}
	}

	// CREATE sets a topic's own factor and quorum.
	for _, tc := range []struct {
		line     string
		ok       bool
		rf, ack  int
		replicas int
	}{
		{"CREATE c-rf1 rf=1", true, 1, 1, 0},
		{"CREATE c-rf2 rf=2 ack=1", false, 0, 0, 0}, // ack 1 with rf > 1 cannot fail over (issue 11)
		{"CREATE c-rf2 rf=2 ack=2", true, 2, 2, 2},
		{"CREATE c-def", true, 3, 2, 3},
		{"CREATE c-bad rf=3 ack=4", false, 0, 0, 0},
		{"CREATE c-bad rf=9", false, 0, 0, 0},
		{"CREATE c-bad foo=1", false, 0, 0, 0},
		{"CREATE", false, 0, 0, 0},
	} {
		rep, err := c.DoLine(ctx, tc.line)
		if tc.ok != (err == nil && string(rep.Encode()) == "OK") {
			t.Fatalf("%s = %q, %v", tc.line, rep.Encode(), err)
		}
		if !tc.ok {
			continue
		}
		st := replStateOf(t, c, strings.Fields(tc.line)[1])
		if st.ReplicationFactor != tc.rf || st.AckQuorum != tc.ack || len(st.Replicas["1"]) != tc.replicas {
			t.Fatalf("%s: STATE %+v", tc.line, st)
		}
	}
}

// TestRecoverySealsAtHighestSurvivorCount: one follower misses the stream,
// the segment leader dies; recovery fences both survivors, seals at the
// higher count, copies the missing entries to the lagging survivor, and
// every acknowledged entry is read once, in order.
func TestRecoverySealsAtHighestSurvivorCount(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) { c.FailureTimeout = time.Second })
	ctx := t.Context()
	rl := nodetest.RaftLeader(t, nodes)
	c := nodetest.Dial(t, rl)
	topic, st := topicLedBy(t, c, "rec-", func(l uint64) bool { return l != rl.ID() })
	victim := nodes[st.LeaderNode-1]
	var lagging *nodetest.Node
	for _, id := range st.Replicas["1"][1:] {
		if id != rl.ID() {
			lagging = nodes[id-1]
		}
	}
	lagging.Faults().DropReplicaStream(true)
	const n = 12
	for i := range n {
		if err := c.Put(ctx, topic, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if got := countOn(lagging, topic, 1); got != 0 {
		t.Fatalf("lagging replica holds %d entries, want 0", got)
	}
	victim.Crash(t)
	start := time.Now()
	putRetry(t, c, topic, "after")
	t.Logf("writes resumed %v after the segment leader crashed", time.Since(start))
	st = replStateOf(t, c, topic)
	if st.SealedSegments["1"] != n || st.CurrentSegment != 2 {
		t.Fatalf("STATE after recovery = %+v", st)
	}
	nodetest.Eventually(t, 10*time.Second, "lagging survivor copied up to the sealed count", func() bool {
		return countOn(lagging, topic, 1) == n
	})
	for i := range n {
		p, ok, err := c.Get(ctx, topic)
		if err != nil || !ok || string(p) != strconv.Itoa(i) {
			t.Fatalf("GET %d = %q, %v, %v", i, p, ok, err)
		}
	}
	if p, ok, err := c.Get(ctx, topic); err != nil || !ok || string(p) != "after" {
		t.Fatalf("GET after = %q %v %v", p, ok, err)
	}
	// The dead leader shows up as a missing replica.
	st = replStateOf(t, c, topic)
	if !slices.Contains(st.UnderReplicated["1"], victim.ID()) {
		t.Fatalf("under_replicated = %v, want node %d in segment 1", st.UnderReplicated, victim.ID())
	}
}

// TestRecoveryWaitsForEnoughReplicas: with rf 3 / ack 2 recovery needs
// two answers to its fence; while only one survivor answers, no survivor
// set can prove it holds every acknowledged entry, so nothing is sealed.
// Once the second answers, the segment is sealed at the right count.
func TestRecoveryWaitsForEnoughReplicas(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) { c.FailureTimeout = time.Second })
	ctx := t.Context()
	rl := nodetest.RaftLeader(t, nodes)
	c := nodetest.Dial(t, rl)
	topic, st := topicLedBy(t, c, "wait-", func(l uint64) bool { return l != rl.ID() })
	for i := range 5 {
		if err := c.Put(ctx, topic, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	var other *nodetest.Node
	for _, id := range st.Replicas["1"] {
		if id != rl.ID() && id != st.LeaderNode {
			other = nodes[id-1]
		}
	}
	other.Faults().RefuseFence(true)
	nodes[st.LeaderNode-1].Crash(t)
	deadline := time.Now().Add(2 * time.Second) // FailureTimeout + a few recovery attempts
	for time.Now().Before(deadline) {
		if r, _ := rl.Metadata().Route(topic); r.Segment != 1 {
			t.Fatalf("segment rolled to %d with one fence answer", r.Segment)
		}
		time.Sleep(50 * time.Millisecond)
	}
	other.Faults().RefuseFence(false)
	nodetest.Eventually(t, 10*time.Second, "recovery after the second answer", func() bool {
		_, cnt, sealed, _ := rl.Metadata().SegmentInfo(topic, 1)
		return sealed && cnt == 5
	})
}

// TestFencedLeaderStopsAcknowledging is the partition case in process:
// the followers are fenced by a recovery the segment leader did not see;
// its next append cannot reach the ack quorum, answers ERR, and is never
// delivered to a reader.
func TestFencedLeaderStopsAcknowledging(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, nil)
	ctx := t.Context()
	rl := nodetest.RaftLeader(t, nodes)
	c := nodetest.Dial(t, rl)
	topic, st := topicLedBy(t, c, "fence-", func(l uint64) bool { return l != rl.ID() })
	leader := nodes[st.LeaderNode-1]
	lc := nodetest.Dial(t, leader)
	for i := range 3 {
		if err := lc.Put(ctx, topic, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	// Both followers hold everything first, so the leader learns of the
	// fence from the next PUT's stream (not from a lagging batch).
	nodetest.Eventually(t, 10*time.Second, "followers caught up", func() bool {
		for _, id := range st.Replicas["1"][1:] {
			if countOn(nodes[id-1], topic, 1) != 3 {
				return false
			}
		}
		return true
	})
	for _, id := range st.Replicas["1"][1:] {
		if _, err := nodes[id-1].RPC(t).ReplicaFence(ctx, topic, 1, 2); err != nil {
			t.Fatal(err)
		}
	}
	err := lc.Put(ctx, topic, []byte("after-fence"))
	if err == nil || !strings.Contains(err.Error(), "ack quorum") {
		t.Fatalf("PUT after the fence = %v, want an unacknowledged ERR", err)
	}
	if got := countOn(leader, topic, 1); got != 4 {
		t.Fatalf("leader holds %d entries, want 4 (3 acknowledged + 1 refused by the quorum)", got)
	}
	for i := range 3 {
		p, ok, err := c.Get(ctx, topic)
		if err != nil || !ok || string(p) != strconv.Itoa(i) {
			t.Fatalf("GET %d = %q, %v, %v", i, p, ok, err)
		}
	}
	if p, ok, err := c.Get(ctx, topic); err != nil || ok {
		t.Fatalf("GET past the acknowledged entries = %q, %v, %v; want EMPTY", p, ok, err)
	}
}

// TestCatchUpAfterRollover: a follower that missed a segment's stream
// pulls it from the other replicas once it is sealed and seals it itself.
func TestCatchUpAfterRollover(t *testing.T) {
	t.Parallel() // no failure detection involved: safe to overlap
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) { c.MaxSegmentEntries = 5 })
	ctx := t.Context()
	c := nodetest.Dial(t, nodes[0])
	topic, st := topicLedBy(t, c, "cu-", func(uint64) bool { return true })
	lagging := nodes[st.Replicas["1"][2]-1]
	lagging.Faults().DropReplicaStream(true)
	for i := range 5 {
		if err := c.Put(ctx, topic, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.Eventually(t, 10*time.Second, "segment 1 sealed", func() bool {
		_, cnt, sealed, _ := nodes[0].Metadata().SegmentInfo(topic, 1)
		return sealed && cnt == 5
	})
	nodetest.Eventually(t, 15*time.Second, "lagging replica caught up and sealed", func() bool {
		info, err := lagging.Store.Stat(ctx, engine.SegmentID{Topic: topic, Segment: 1})
		return err == nil && info.Entries == 5 && info.Sealed
	})
	st = replStateOf(t, c, topic)
	if len(st.Replicas["2"]) != 3 || st.Replicas["2"][0] != st.LeaderNode {
		t.Fatalf("segment 2 replicas = %v (leader %d)", st.Replicas["2"], st.LeaderNode)
	}
}

// TestReReplication: a follower of the open segment (and of sealed ones)
// stays down longer than ReplicaRepairTimeout. The open segment is rolled
// over early to a set of live nodes, and every sealed segment it held is
// copied to a node outside its set, which is recorded as the new set.
func TestReReplication(t *testing.T) {
	nodes := nodetest.StartCluster(t, 4, func(c *node.Config) {
		c.FailureTimeout = time.Second
		c.ReplicaRepairTimeout = time.Second
		c.MaxSegmentEntries = 5
	})
	ctx := t.Context()
	rl := nodetest.RaftLeader(t, nodes)
	c := nodetest.Dial(t, rl)
	topic, _ := topicLedBy(t, c, "rr-", func(uint64) bool { return true })
	for i := range 5 {
		if err := c.Put(ctx, topic, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.Eventually(t, 10*time.Second, "segment 1 sealed", func() bool {
		_, cnt, sealed, _ := rl.Metadata().SegmentInfo(topic, 1)
		return sealed && cnt == 5
	})
	if err := c.Put(ctx, topic, []byte("5")); err != nil {
		t.Fatal(err)
	}
	open, _, _ := rl.Metadata().SegmentReplicas(topic, 2)
	var victim uint64
	for _, id := range open[1:] {
		if id != rl.ID() {
			victim = id
			break
		}
	}
	nodes[victim-1].Crash(t)
	nodetest.Eventually(t, 20*time.Second, "open segment rolled to live replicas", func() bool {
		r, _ := rl.Metadata().Route(topic)
		set, _, _ := rl.Metadata().SegmentReplicas(topic, r.Segment)
		return r.Segment > 2 && len(set) == 3 && !slices.Contains(set, victim)
	})
	nodetest.Eventually(t, 30*time.Second, "sealed segments re-replicated", func() bool {
		for seg := uint64(1); seg <= 2; seg++ {
			set, _, _ := rl.Metadata().SegmentReplicas(topic, seg)
			if len(set) != 3 || slices.Contains(set, victim) {
				return false
			}
			_, cnt, _, _ := rl.Metadata().SegmentInfo(topic, seg)
			for _, id := range set {
				info, err := nodes[id-1].Store.Stat(ctx, engine.SegmentID{Topic: topic, Segment: seg})
				if err != nil || info.Entries < cnt || !info.Sealed {
					return false
				}
			}
		}
		return true
	})
	if err := c.Put(ctx, topic, []byte("6")); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		p, ok, err := c.Get(ctx, topic)
		if err != nil || !ok || string(p) != strconv.Itoa(i) {
			t.Fatalf("GET %d = %q, %v, %v", i, p, ok, err)
		}
	}
}

// TestShortSetGrows: a topic created while its node was the only voter has
// a one-member set; once two more nodes join, the open segment is rolled
// over to a full set and the sealed one is copied to the new nodes.
func TestShortSetGrows(t *testing.T) {
	t.Parallel() // no failure detection involved: safe to overlap
	dir := t.TempDir()
	tweak := func(c *node.Config) { c.ReplicaRepairTimeout = time.Second; c.FailureTimeout = time.Second }
	cfg1 := nodetest.Config(1, dir)
	tweak(&cfg1)
	n1 := nodetest.Start(t, cfg1, nil)
	nodes := []*nodetest.Node{n1}
	t.Cleanup(func() {
		for _, tn := range nodes {
			tn.Stop(t)
		}
	})
	ctx := t.Context()
	c := nodetest.Dial(t, n1)
	nodetest.Eventually(t, 10*time.Second, "node 1 leads", func() bool { return n1.IsRaftLeader() })
	if err := c.Register(ctx, "short"); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "short", []byte("0")); err != nil {
		t.Fatal(err)
	}
	if st := replStateOf(t, c, "short"); len(st.Replicas["1"]) != 1 {
		t.Fatalf("replicas with one voter = %v", st.Replicas)
	}
	for id := uint64(2); id <= 3; id++ {
		cfg := nodetest.Config(id, dir)
		cfg.Join = []string{n1.RaftAddr()}
		tweak(&cfg)
		nodes = append(nodes, nodetest.Start(t, cfg, nil))
	}
	nodetest.Eventually(t, 30*time.Second, "full sets on every segment", func() bool {
		r, _ := n1.Metadata().Route("short")
		if r.Segment < 2 {
			return false
		}
		for seg := uint64(1); seg <= r.Segment; seg++ {
			if set, _, _ := n1.Metadata().SegmentReplicas("short", seg); len(set) != 3 {
				return false
			}
		}
		return true
	})
	nodetest.Eventually(t, 10*time.Second, "segment 1 on all three nodes", func() bool {
		for _, tn := range nodes {
			if countOn(tn, "short", 1) != 1 {
				return false
			}
		}
		return true
	})
	if err := c.Put(ctx, "short", []byte("1")); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		p, ok, err := c.Get(ctx, "short")
		if err != nil || !ok || string(p) != strconv.Itoa(i) {
			t.Fatalf("GET %d = %q, %v, %v", i, p, ok, err)
		}
	}
}

// TestRolloverSealsAtConfirmedCount: a full segment whose ack quorum does
// not hold its last batch (the only follower stopped taking the stream) is
// sealed at the count the quorum holds; the unconfirmed PUT answers ERR and
// is never delivered.
func TestRolloverSealsAtConfirmedCount(t *testing.T) {
	t.Parallel() // no failure detection involved: safe to overlap
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) { c.MaxSegmentEntries = 4 })
	ctx := t.Context()
	c := nodetest.Dial(t, nodes[0])
	rep, err := c.DoLine(ctx, "CREATE capped rf=2 ack=2")
	if err != nil || string(rep.Encode()) != "OK" {
		t.Fatalf("CREATE = %q, %v", rep.Encode(), err)
	}
	st := replStateOf(t, c, "capped")
	follower := nodes[st.Replicas["1"][1]-1]
	for i := range 3 {
		if err := c.Put(ctx, "capped", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	follower.Faults().DropReplicaStream(true)
	start := time.Now()
	err = c.Put(ctx, "capped", []byte("unconfirmed"))
	if err == nil || !strings.Contains(err.Error(), "ack quorum") {
		t.Fatalf("PUT without its quorum = %v, want an unacknowledged ERR", err)
	}
	t.Logf("unconfirmed PUT answered after %v", time.Since(start))
	nodetest.Eventually(t, 10*time.Second, "segment 1 sealed", func() bool {
		_, _, sealed, _ := nodes[0].Metadata().SegmentInfo("capped", 1)
		return sealed
	})
	if _, cnt, _, _ := nodes[0].Metadata().SegmentInfo("capped", 1); cnt != 3 {
		t.Fatalf("segment 1 sealed at %d, want the confirmed 3", cnt)
	}
	follower.Faults().DropReplicaStream(false)
	if err := c.Put(ctx, "capped", []byte("3")); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		p, ok, err := c.Get(ctx, "capped")
		if err != nil || !ok || string(p) != strconv.Itoa(i) {
			t.Fatalf("GET %d = %q, %v, %v", i, p, ok, err)
		}
	}
}
