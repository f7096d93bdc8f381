package node_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrus-go/walrus/backends/memstore"
	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/wire"
)

// TestForwardedGetRetryLosesNothing (issue 11, hole 2): a GET forwarded to
// the cursor owner that times out is retried; the entries the first
// attempt handed out must come back, not be skipped.
func TestForwardedGetRetryLosesNothing(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, nil)
	leader := nodetest.RaftLeader(t, nodes)
	var via *nodetest.Node
	for _, n := range nodes {
		if n != leader {
			via = n
			break
		}
	}
	c := nodetest.Dial(t, via)
	ctx := t.Context()
	for i := range 10 {
		if err := c.Put(ctx, "g", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// The first GET the owner receives is held past the requester's RPC
	// timeout (5 s): the requester retries while the first attempt is
	// still on its way.
	var held atomic.Bool
	leader.Faults().Intercept(func(method byte, _ []byte) error {
		if method == wire.MethodGet && held.CompareAndSwap(false, true) {
			time.Sleep(6 * time.Second) // the fault itself: this request arrives late, it waits on nothing
		}
		return nil
	})
	defer leader.Faults().Intercept(nil)
	for i := range 10 {
		p, ok, err := c.Get(ctx, "g")
		if err != nil || !ok || string(p) != fmt.Sprintf("m%d", i) {
			t.Fatalf("GET %d = %q ok=%v err=%v, want m%d", i, p, ok, err, i)
		}
	}
	if !held.Load() {
		t.Fatal("the fault was never injected: the test proves nothing")
	}
}

// TestWholeClusterStopKeepsCursor (issue 11, hole 8): every node stopped
// at once right after GETs, then restarted: the next GET continues where
// the last one stopped.
func TestWholeClusterStopKeepsCursor(t *testing.T) {
	dir := t.TempDir()
	stores := map[uint64]*memstore.Store{}
	cfgs := map[uint64]node.Config{}
	var nodes []*nodetest.Node
	for i := uint64(1); i <= 3; i++ {
		cfg := nodetest.Config(i, dir)
		if i > 1 {
			cfg.Join = []string{nodes[0].RaftAddr()}
		}
		// Commits rarely: only the shutdown commit can save the position.
		cfg.CursorCommitInterval = time.Minute
		stores[i] = memstore.New()
		cfgs[i] = cfg
		nodes = append(nodes, nodetest.Start(t, cfg, stores[i]))
	}
	c := nodetest.Dial(t, nodes[0])
	nodetest.Eventually(t, 30*time.Second, "three voters", func() bool {
		return len(nodetest.Metrics(t, c).MembershipConfig.Voters) == 3
	})
	ctx := t.Context()
	for i := range 60 {
		if err := c.Put(ctx, "s", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		if p, ok, err := c.Get(ctx, "s"); err != nil || !ok || string(p) != fmt.Sprintf("m%d", i) {
			t.Fatalf("GET %d = %q %v %v", i, p, ok, err)
		}
	}
	// Restart on the same ports (the Raft configuration names them).
	for i, n := range nodes {
		cfg := cfgs[uint64(i+1)]
		cfg.RaftPort, cfg.ClientPort = portOf(t, n.RaftAddr()), portOf(t, n.ClientAddr())
		cfg.Join = nil
		cfgs[uint64(i+1)] = cfg
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.Stop(t) }()
	}
	wg.Wait()
	restarted := make([]*nodetest.Node, 3)
	for i := range restarted {
		wg.Add(1)
		go func() { defer wg.Done(); restarted[i] = nodetest.Start(t, cfgs[uint64(i+1)], stores[uint64(i+1)]) }()
	}
	wg.Wait()
	nodes = restarted
	t.Cleanup(func() {
		for _, n := range nodes {
			n.Stop(t)
		}
	})
	c = nodetest.Dial(t, nodes[0])
	var p []byte
	nodetest.Eventually(t, 30*time.Second, "a GET after the restart", func() bool {
		var err error
		var ok bool
		p, ok, err = c.Get(context.Background(), "s")
		return err == nil && ok
	})
	if string(p) != "m40" {
		t.Fatalf("first GET after a whole-cluster stop = %q, want m40 (the cursor commit was lost)", p)
	}
}

// TestCreateRefusesUnrecoverableAck (issue 11, hole 5).
func TestCreateRefusesUnrecoverableAck(t *testing.T) {
	nodes := nodetest.StartCluster(t, 1, nil)
	c := nodetest.Dial(t, nodes[0])
	r, err := c.DoLine(t.Context(), "CREATE t rf=3 ack=1")
	if err == nil && !r.IsErr() {
		t.Fatalf("CREATE rf=3 ack=1 = %q, want ERR", r.String())
	}
	if !r.IsErr() {
		var re interface{ Error() string }
		if !errors.As(err, &re) {
			t.Fatal(err)
		}
	}
}

// TestRecoveryCopiesTheSuspectsTail (issue 11, hole 3): a segment leader
// that is alive but judged dead (its heartbeats do not reach the Raft
// leader) answers the recovery's fence with the highest count; the seal
// must not commit at a count only it holds: its tail is copied to the
// other replicas first (a recovery read past its ack bound).
func TestRecoveryCopiesTheSuspectsTail(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) { c.FailureTimeout = time.Second })
	raftLeader := nodetest.RaftLeader(t, nodes)
	c := nodetest.Dial(t, raftLeader)
	topic, st := topicLedBy(t, c, "tail-", func(l uint64) bool { return l != raftLeader.ID() })
	victim := nodes[st.LeaderNode-1]
	ctx := t.Context()
	vc := nodetest.Dial(t, victim)
	for i := range 5 {
		if err := vc.Put(ctx, topic, fmt.Appendf(nil, "a%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var followers []*nodetest.Node
	for _, id := range st.Replicas["1"] {
		if id != victim.ID() {
			followers = append(followers, nodes[id-1])
		}
	}
	// The followers stop taking the leader's stream: what it appends now
	// stays on it alone (and is not acknowledged).
	for _, f := range followers {
		f.Faults().DropReplicaStream(true)
	}
	for i := range 3 {
		if err := vc.Put(ctx, topic, fmt.Appendf(nil, "b%d", i)); err == nil {
			t.Fatal("a PUT was acknowledged by the leader alone")
		}
	}
	if got := victim.Count(t, topic, 1); got < 6 {
		t.Fatalf("the leader holds %d entries, want its unacknowledged tail too", got)
	}
	// Its heartbeats stop reaching the Raft leader: it is judged dead
	// while alive, and answers the recovery's fence.
	raftLeader.Faults().Intercept(func(method byte, payload []byte) error {
		var hb wire.Heartbeat
		if method == wire.MethodHeartbeat && hb.Decode(payload) == nil && hb.ID == victim.ID() {
			return nodetest.ErrInjected
		}
		return nil
	})
	defer raftLeader.Faults().Intercept(nil)
	var sealed uint64
	nodetest.Eventually(t, 30*time.Second, "segment 1 sealed by a recovery", func() bool {
		_, count, ok, _ := raftLeader.Metadata().SegmentInfo(topic, 1)
		sealed = count
		return ok
	})
	held := false
	for _, f := range followers {
		if f.Count(t, topic, 1) >= sealed {
			held = true
		}
	}
	if !held {
		t.Fatalf("segment 1 sealed at %d entries, but only the suspected leader holds them all (followers: %d, %d)",
			sealed, followers[0].Count(t, topic, 1), followers[1].Count(t, topic, 1))
	}
}
