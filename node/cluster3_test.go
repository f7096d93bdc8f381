package node

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

func raftLeader(t testing.TB, nodes []*testNode) *testNode {
	t.Helper()
	var leader *testNode
	eventually(t, 10*time.Second, "a raft leader", func() bool {
		for _, tn := range nodes {
			if tn.n.cons.IsLeader() {
				leader = tn
				return true
			}
		}
		return false
	})
	return leader
}

func TestThreeNodeCluster(t *testing.T) {
	nodes := startCluster(t, 3, func(c *Config) { c.MaxSegmentEntries = 20 })
	ctx := t.Context()
	leader := raftLeader(t, nodes)
	var others []*testNode
	for _, tn := range nodes {
		if tn != leader {
			others = append(others, tn)
		}
	}

	t.Run("metrics", func(t *testing.T) {
		m := metricsOf(t, dial(t, leader))
		if m.State != "Leader" || len(m.Replication) != 2 {
			t.Fatalf("leader metrics = %+v", m)
		}
		f := metricsOf(t, dial(t, others[0]))
		if f.State != "Follower" || f.CurrentLeader == nil || *f.CurrentLeader != leader.n.id || f.Replication != nil {
			t.Fatalf("follower metrics = %+v", f)
		}
	})

	t.Run("smoke through non-leaders", func(t *testing.T) {
		w, r := dial(t, others[0]), dial(t, others[1])
		if err := w.Register(ctx, "smoke"); err != nil {
			t.Fatal(err)
		}
		for i := range 15 { // below the segment limit
			if err := w.Put(ctx, "smoke", fmt.Appendf(nil, "s%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 15 {
			p, ok, err := r.Get(ctx, "smoke")
			if err != nil || !ok || string(p) != fmt.Sprintf("s%d", i) {
				t.Fatalf("get %d = %q %v %v", i, p, ok, err)
			}
		}
		if _, ok, err := r.Get(ctx, "smoke"); ok || err != nil {
			t.Fatalf("get past end: %v %v", ok, err)
		}
	})

	t.Run("topics spread over nodes", func(t *testing.T) {
		c := dial(t, others[0])
		leaders := map[uint64]bool{}
		for i := range 6 {
			topic := "spread-" + strconv.Itoa(i)
			if err := c.Register(ctx, topic); err != nil {
				t.Fatal(err)
			}
			leaders[stateOfTopic(t, c, topic).LeaderNode] = true
		}
		if len(leaders) != 3 {
			t.Fatalf("topic leaders %v: want all three nodes", leaders)
		}
	})

	t.Run("rollover and exactly-once reads", func(t *testing.T) {
		const writers, perWriter, rounds = 4, 60, 4
		c := dial(t, nodes[1])
		// Write in rounds and wait for a rollover after each, so several
		// segments fill (the monitor seals at most one segment per tick).
		for round := range rounds {
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := dial(t, nodes[w%3])
					for i := round * perWriter / rounds; i < (round+1)*perWriter/rounds; i++ {
						if err := c.Put(ctx, "roll", fmt.Appendf(nil, "%d:%d", w, i)); err != nil {
							errs <- fmt.Errorf("writer %d put %d: %w", w, i, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, "a rollover", func() bool {
				return len(stateOfTopic(t, c, "roll").SealedSegments) > round
			})
		}
		st := stateOfTopic(t, c, "roll")
		// Leaders rotate round-robin.
		for seg := uint64(2); seg <= st.CurrentSegment; seg++ {
			prev := st.SegmentLeaders[strconv.FormatUint(seg-1, 10)]
			cur := st.SegmentLeaders[strconv.FormatUint(seg, 10)]
			if cur != prev%3+1 {
				t.Fatalf("segment %d leader %d after %d: want round-robin (%+v)", seg, cur, prev, st)
			}
		}
		// Readers on all nodes drain the topic: every entry once, and
		// each writer's entries in order.
		startTerms := terms(nodes)
		next := make([]int, writers)
		got := 0
		readers := []int{0, 1, 2}
		for got < writers*perWriter {
			rc := dial(t, nodes[readers[got%3]])
			p, ok, err := rc.Get(ctx, "roll")
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				t.Fatalf("EMPTY after %d of %d entries", got, writers*perWriter)
			}
			var w, i int
			if _, err := fmt.Sscanf(string(p), "%d:%d", &w, &i); err != nil {
				t.Fatalf("bad entry %q", p)
			}
			if i != next[w] {
				if terms(nodes) != startTerms {
					// A Raft leader change redelivers the documented
					// uncommitted cursor window; exactly-once holds only
					// while the cluster is healthy.
					t.Skipf("raft leader changed during the reads (terms %v -> %v); redelivery allowed", startTerms, terms(nodes))
				}
				t.Fatalf("writer %d: got entry %d, want %d", w, i, next[w])
			}
			next[w]++
			got++
		}
		if _, ok, _ := c.Get(ctx, "roll"); ok {
			t.Fatal("extra entry after draining")
		}
		// Sealed counts plus the open segment equal what was written.
		st = stateOfTopic(t, c, "roll")
		var sealed uint64
		for _, n := range st.SealedSegments {
			sealed += n
		}
		var open uint64
		for _, tn := range nodes {
			if tn.n.id == st.LeaderNode {
				open, _ = tn.n.segmentCountOf("roll", st.CurrentSegment)
			}
		}
		if sealed+open != writers*perWriter {
			t.Fatalf("sealed %d + open %d != written %d", sealed, open, writers*perWriter)
		}
		// Each sealed count equals what the holding store has.
		for segStr, count := range st.SealedSegments {
			seg, _ := strconv.ParseUint(segStr, 10, 64)
			holder := st.SegmentLeaders[segStr]
			stored, _ := nodes[holder-1].n.segmentCountOf("roll", seg)
			if stored != count {
				t.Fatalf("segment %d: sealed count %d, store holds %d", seg, count, stored)
			}
		}
	})

	t.Run("append on a non-leader gets NotLeaderError and PUT retries", func(t *testing.T) {
		c := dial(t, nodes[0])
		if err := c.Register(ctx, "lease"); err != nil {
			t.Fatal(err)
		}
		st := stateOfTopic(t, c, "lease")
		wrong := nodes[st.LeaderNode%3] // not the leader
		err := wrong.n.appendLocal(ctx, "lease", [][]byte{[]byte("x")})
		var nl *NotLeaderError
		if !errors.As(err, &nl) || nl.Leader != st.LeaderNode {
			t.Fatalf("append on non-leader: %v", err)
		}
		// Through the RPC, the error keeps its kind.
		_, err = leader.n.call(ctx, wrong.n.id, methodAppend, func() []byte {
			var e enc
			e.str("lease")
			e.list([][]byte{[]byte("x")})
			return e.b
		}())
		if !isNotLeader(err) {
			t.Fatalf("rpc append on non-leader: %v", err)
		}
		// A client PUT on that node is forwarded and succeeds.
		if err := dial(t, wrong).Put(ctx, "lease", []byte("ok")); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, 1, dir)
	tn := startNode(t, cfg, nil)
	store := tn.store
	raftAddr, clientAddr := tn.n.RaftAddr(), tn.n.ClientAddr()
	c := dial(t, tn)
	ctx := t.Context()
	for i := range 10 {
		if err := c.Put(ctx, "r", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		if p, ok, err := c.Get(ctx, "r"); err != nil || !ok || string(p) != strconv.Itoa(i) {
			t.Fatalf("get %d: %q %v %v", i, p, ok, err)
		}
	}
	_ = c.Close()
	tn.stop(t)

	// Same data dir and store (memstore stands in for a reopened disk store).
	cfg.RaftPort, cfg.ClientPort = portOf(t, raftAddr), portOf(t, clientAddr)
	tn = startNode(t, cfg, store)
	defer tn.stop(t)
	c = dial(t, tn)
	eventually(t, 10*time.Second, "leader after restart", func() bool { return tn.n.cons.IsLeader() })
	p, ok, err := c.Get(ctx, "r")
	if err != nil || !ok || string(p) != "4" {
		t.Fatalf("first get after restart = %q %v %v (cursor lost?)", p, ok, err)
	}
	if _, ok := tn.n.fsm.Topic("r"); !ok {
		t.Fatal("topic lost")
	}
}

func portOf(t testing.TB, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// terms renders every node's current Raft term (to detect elections).
func terms(nodes []*testNode) string {
	out := ""
	for _, tn := range nodes {
		out += strconv.FormatUint(tn.n.cons.Raft().CurrentTerm(), 10) + ","
	}
	return out
}
