package node

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrus-go/walrus/backends/memstore"
	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/consensus"
)

// testNode is one running in-process node.
type testNode struct {
	n       *Node
	store   engine.SegmentStore
	cancel  context.CancelFunc
	done    chan error
	cfg     Config
	stopped atomic.Bool
}

// testLogger writes WARN and above to the test output; WALRUS_TEST_LOG=debug
// or =info shows more.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	switch os.Getenv("WALRUS_TEST_LOG") {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

func testConfig(t testing.TB, id uint64, dir string) Config {
	cfg := DefaultConfig()
	cfg.NodeID = id
	cfg.DataDir = dir
	cfg.RaftPort = 0
	cfg.ClientPort = 0
	cfg.MonitorInterval = 50 * time.Millisecond
	cfg.CursorCommitInterval = 20 * time.Millisecond
	// Generous Raft timeouts: the test machine is shared and -race is slow,
	// and a spurious election makes the cursor redeliver its window.
	cfg.RaftTiming = consensus.Timing{HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond}
	return cfg
}

func startNode(t testing.TB, cfg Config, store engine.SegmentStore) *testNode {
	t.Helper()
	if store == nil {
		store = memstore.New()
	}
	n, err := New(cfg, store, testLogger(t).With("test_node", cfg.NodeID))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{n: n, store: store, cancel: cancel, done: make(chan error, 1), cfg: cfg}
	go func() { tn.done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-tn.done:
		t.Fatalf("node %d: Run: %v", cfg.NodeID, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("node %d not ready", cfg.NodeID)
	}
	return tn
}

func (tn *testNode) stop(t testing.TB) {
	t.Helper()
	if !tn.stopped.CompareAndSwap(false, true) {
		return
	}
	tn.cancel()
	select {
	case err := <-tn.done:
		if err != nil {
			t.Errorf("node %d: Run returned %v", tn.cfg.NodeID, err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("node %d did not stop", tn.cfg.NodeID)
	}
}

// crash stops the node without its graceful shutdown steps, as if the
// process died (the closest an in-process test gets to SIGKILL).
func (tn *testNode) crash(t testing.TB) {
	tn.n.abrupt.Store(true)
	tn.stop(t)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dial(t testing.TB, tn *testNode) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, tn.n.ClientAddr(), client.Options{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

type metricsView struct {
	ID            uint64  `json:"id"`
	State         string  `json:"state"`
	CurrentLeader *uint64 `json:"current_leader"`
	Membership    struct {
		Voters   []uint64 `json:"voters"`
		Learners []uint64 `json:"learners"`
	} `json:"membership_config"`
	Replication map[string]struct {
		MatchIndex uint64 `json:"match_index"`
	} `json:"replication"`
}

func metricsOf(t testing.TB, c *client.Client) metricsView {
	t.Helper()
	raw, err := c.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var m metricsView
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("metrics %s: %v", raw, err)
	}
	return m
}

type stateView struct {
	Topic          string            `json:"topic"`
	CurrentSegment uint64            `json:"current_segment"`
	LeaderNode     uint64            `json:"leader_node"`
	SealedSegments map[string]uint64 `json:"sealed_segments"`
	SegmentLeaders map[string]uint64 `json:"segment_leaders"`
}

func stateOfTopic(t testing.TB, c *client.Client, topic string) stateView {
	t.Helper()
	raw, err := c.State(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var s stateView
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("state %s: %v", raw, err)
	}
	return s
}

// startCluster starts n nodes: node 1 bootstraps, the others join through
// node 1, and it waits until all are voters.
func startCluster(t testing.TB, size int, tweak func(*Config)) []*testNode {
	t.Helper()
	dir := t.TempDir()
	var nodes []*testNode
	for i := 1; i <= size; i++ {
		cfg := testConfig(t, uint64(i), dir)
		if i > 1 {
			cfg.Join = []string{nodes[0].n.RaftAddr()}
		}
		if tweak != nil {
			tweak(&cfg)
		}
		nodes = append(nodes, startNode(t, cfg, nil))
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, tn := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); tn.stop(t) }()
		}
		wg.Wait()
	})
	c := dial(t, nodes[0])
	eventually(t, 30*time.Second, "all nodes voters", func() bool {
		m := metricsOf(t, c)
		return len(m.Membership.Voters) == size
	})
	// Every node knows every address.
	eventually(t, 10*time.Second, "node addresses registered", func() bool {
		for _, tn := range nodes {
			if len(tn.n.fsm.Nodes()) != size {
				return false
			}
		}
		return true
	})
	return nodes
}

func TestSingleNodeEndToEnd(t *testing.T) {
	nodes := startCluster(t, 1, nil)
	c := dial(t, nodes[0])
	ctx := t.Context()

	m := metricsOf(t, c)
	if m.State != "Leader" || m.CurrentLeader == nil || *m.CurrentLeader != 1 || m.ID != 1 {
		t.Fatalf("metrics = %+v", m)
	}
	if err := c.Register(ctx, "logs"); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctx, "logs"); err != nil {
		t.Fatalf("second register: %v", err)
	}
	for i := range 30 {
		if err := c.Put(ctx, "logs", fmt.Appendf(nil, "msg %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		p, ok, err := c.Get(ctx, "logs")
		if err != nil || !ok || string(p) != fmt.Sprintf("msg %d", i) {
			t.Fatalf("get %d = %q %v %v", i, p, ok, err)
		}
	}
	if _, ok, err := c.Get(ctx, "logs"); err != nil || ok {
		t.Fatalf("get past end: ok=%v err=%v", ok, err)
	}
	st := stateOfTopic(t, c, "logs")
	if st.Topic != "logs" || st.CurrentSegment != 1 || st.LeaderNode != 1 || st.SegmentLeaders["1"] != 1 || st.SealedSegments == nil {
		t.Fatalf("state = %+v", st)
	}
	// PUT to an unknown topic creates it.
	if err := c.Put(ctx, "health-check", []byte("123")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ line, want string }{
		{"GET nosuch", "ERR unknown topic nosuch"},
		{"STATE nosuch", "ERR unknown topic nosuch"},
		{"FROB x", ""},
	} {
		r, err := c.DoLine(ctx, tc.line)
		if err != nil && !r.IsErr() {
			t.Fatal(err)
		}
		if !r.IsErr() || (tc.want != "" && r.String() != tc.want) {
			t.Fatalf("%s -> %q", tc.line, r.String())
		}
	}
	r, err := c.DoLine(ctx, "TOPICS")
	if err != nil {
		t.Fatal(err)
	}
	var topics []topicSummary
	if err := json.Unmarshal(r.Body, &topics); err != nil || len(topics) != 2 || topics[1].Topic != "logs" || topics[1].Entries != 30 {
		t.Fatalf("TOPICS = %s (%v)", r.Body, err)
	}
}
