package node_test

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/wire"
)

func TestThreeNodeCluster(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) { c.MaxSegmentEntries = 20 })
	ctx := t.Context()
	leader := nodetest.RaftLeader(t, nodes)
	var others []*nodetest.Node
	for _, tn := range nodes {
		if tn != leader {
			others = append(others, tn)
		}
	}

	t.Run("metrics", func(t *testing.T) {
		m := nodetest.Metrics(t, nodetest.Dial(t, leader))
		if m.State != "Leader" || len(m.Replication) != 2 {
			t.Fatalf("leader metrics = %+v", m)
		}
		f := nodetest.Metrics(t, nodetest.Dial(t, others[0]))
		if f.State != "Follower" || f.CurrentLeader == nil || *f.CurrentLeader != leader.ID() || f.Replication != nil {
			t.Fatalf("follower metrics = %+v", f)
		}
	})

	t.Run("smoke through non-leaders", func(t *testing.T) {
		w, r := nodetest.Dial(t, others[0]), nodetest.Dial(t, others[1])
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
		c := nodetest.Dial(t, others[0])
		leaders := map[uint64]bool{}
		for i := range 6 {
			topic := "spread-" + strconv.Itoa(i)
			if err := c.Register(ctx, topic); err != nil {
				t.Fatal(err)
			}
			leaders[nodetest.State(t, c, topic).LeaderNode] = true
		}
		if len(leaders) != 3 {
			t.Fatalf("topic leaders %v: want all three nodes", leaders)
		}
	})

	t.Run("rollover and exactly-once reads", func(t *testing.T) {
		const writers, perWriter, rounds = 4, 60, 4
		c := nodetest.Dial(t, nodes[1])
		// Write in rounds and wait for a rollover after each, so several
		// segments fill (the monitor seals at most one segment per tick).
		for round := range rounds {
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := nodetest.Dial(t, nodes[w%3])
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
			nodetest.Eventually(t, 20*time.Second, "a rollover", func() bool {
				return len(nodetest.State(t, c, "roll").SealedSegments) > round
			})
		}
		st := nodetest.State(t, c, "roll")
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
			rc := nodetest.Dial(t, nodes[readers[got%3]])
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
		st = nodetest.State(t, c, "roll")
		var sealed uint64
		for _, n := range st.SealedSegments {
			sealed += n
		}
		var open uint64
		for _, tn := range nodes {
			if tn.ID() == st.LeaderNode {
				open, _ = countOf(tn, "roll", st.CurrentSegment)
			}
		}
		if sealed+open != writers*perWriter {
			t.Fatalf("sealed %d + open %d != written %d", sealed, open, writers*perWriter)
		}
		// Each sealed count equals what the holding store has.
		for segStr, count := range st.SealedSegments {
			seg, _ := strconv.ParseUint(segStr, 10, 64)
			holder := st.SegmentLeaders[segStr]
			stored, _ := countOf(nodes[holder-1], "roll", seg)
			if stored != count {
				t.Fatalf("segment %d: sealed count %d, store holds %d", seg, count, stored)
			}
		}
	})

	t.Run("append on a non-leader gets node.NotLeaderError and PUT retries", func(t *testing.T) {
		c := nodetest.Dial(t, nodes[0])
		if err := c.Register(ctx, "lease"); err != nil {
			t.Fatal(err)
		}
		st := nodetest.State(t, c, "lease")
		wrong := nodes[st.LeaderNode%3] // not the leader
		// Through the internal RPC, as a peer sends it, the refusal keeps
		// its kind and names the leader.
		err := wrong.RPC(t).Append(ctx, "lease", [][]byte{[]byte("x")})
		if !wire.IsNotLeader(err) || !strings.Contains(err.Error(), fmt.Sprintf("leader is node %d", st.LeaderNode)) {
			t.Fatalf("rpc append on non-leader: %v", err)
		}
		// A client PUT on that node is forwarded and succeeds.
		if err := nodetest.Dial(t, wrong).Put(ctx, "lease", []byte("ok")); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	cfg := nodetest.Config(1, dir)
	tn := nodetest.Start(t, cfg, nil)
	store := tn.Store
	raftAddr, clientAddr := tn.RaftAddr(), tn.ClientAddr()
	c := nodetest.Dial(t, tn)
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
	tn.Stop(t)

	// Same data dir and store (memstore stands in for a reopened disk store).
	cfg.RaftPort, cfg.ClientPort = portOf(t, raftAddr), portOf(t, clientAddr)
	tn = nodetest.Start(t, cfg, store)
	defer tn.Stop(t)
	c = nodetest.Dial(t, tn)
	nodetest.Eventually(t, 10*time.Second, "leader after restart", func() bool { return tn.IsRaftLeader() })
	p, ok, err := c.Get(ctx, "r")
	if err != nil || !ok || string(p) != "4" {
		t.Fatalf("first get after restart = %q %v %v (cursor lost?)", p, ok, err)
	}
	if _, ok := tn.Metadata().Topic("r"); !ok {
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
func terms(nodes []*nodetest.Node) string {
	out := ""
	for _, tn := range nodes {
		out += strconv.FormatUint(tn.Consensus().Raft().CurrentTerm(), 10) + ","
	}
	return out
}
