// Package nodetest runs in-process Walrus clusters for tests: it starts
// nodes on loopback with free ports and temporary directories, waits for
// them with deadlines, stops or crashes them, and injects faults into the
// internal RPC a node receives through a wire interceptor — so no test
// hook lives in the node's production state.
package nodetest

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrus-go/walrus/backends/memstore"
	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/diskguard"
	"github.com/walrus-go/walrus/node/mux"
	"github.com/walrus-go/walrus/node/rpc"
	"github.com/walrus-go/walrus/node/status"
	"github.com/walrus-go/walrus/node/wire"
)

// Node is one running in-process node.
type Node struct {
	*node.Node
	Store  engine.SegmentStore
	Config node.Config

	// ClientOptions are what Dial uses (its Timeout is replaced); set TLS
	// here for a node whose client port speaks TLS (StartClusterWith).
	ClientOptions client.Options

	faults  *Faults
	cancel  context.CancelFunc
	done    chan error
	stopped atomic.Bool
}

// Logger writes WARN and above to the test output; WALRUS_TEST_LOG=debug
// or =info shows more.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	switch os.Getenv("WALRUS_TEST_LOG") {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// Config is a node configuration for tests: free ports, fast monitor and
// cursor commits, and Raft timeouts generous enough for a shared machine
// under -race (a spurious election makes the cursor redeliver its window).
func Config(id uint64, dir string) node.Config {
	cfg := node.DefaultConfig()
	cfg.NodeID = id
	cfg.DataDir = dir
	cfg.RaftPort = 0
	cfg.ClientPort = 0
	cfg.MonitorInterval = 50 * time.Millisecond
	cfg.CursorCommitInterval = 20 * time.Millisecond
	cfg.RaftTiming = consensus.Timing{HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond}
	return cfg
}

// Start runs a node (on a fresh memstore when store is nil) and waits
// until it is ready. Faults can be injected into it through Faults().
func Start(t testing.TB, cfg node.Config, store engine.SegmentStore) *Node {
	t.Helper()
	if store == nil {
		store = memstore.New()
	}
	f := &Faults{}
	cfg.Intercept = f.intercept
	if cfg.DiskStat == nil {
		cfg.DiskStat = f.diskStat
	}
	n, err := node.New(cfg, store, Logger(t).With("test_node", cfg.NodeID))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &Node{Node: n, Store: store, Config: cfg, faults: f, cancel: cancel, done: make(chan error, 1)}
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

// Stop shuts the node down cleanly and waits for it.
func (n *Node) Stop(t testing.TB) {
	t.Helper()
	if !n.stopped.CompareAndSwap(false, true) {
		return
	}
	n.cancel()
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("node %d: Run returned %v", n.Config.NodeID, err)
		}
	case <-time.After(20 * time.Second):
		buf := make([]byte, 8<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("node %d did not stop; goroutines:\n%s", n.Config.NodeID, buf)
	}
}

// Crash stops the node without its graceful shutdown steps, as if the
// process died (the closest an in-process test gets to SIGKILL).
func (n *Node) Crash(t testing.TB) {
	n.Abort()
	n.Stop(t)
}

// Faults returns the node's fault switches.
func (n *Node) Faults() *Faults { return n.faults }

// IsRaftLeader reports whether the node leads Raft now.
func (n *Node) IsRaftLeader() bool {
	c := n.Consensus()
	return c != nil && c.IsLeader()
}

// Count is the number of entries the node's store holds for a segment.
func (n *Node) Count(t testing.TB, topic string, seg uint64) uint64 {
	t.Helper()
	info, err := n.Store.Stat(context.Background(), engine.SegmentID{Topic: topic, Segment: seg})
	if err != nil {
		return 0
	}
	return info.Entries
}

// RPC returns a stub of the node's internal RPC, as a peer would call it.
func (n *Node) RPC(t testing.TB) wire.Client {
	t.Helper()
	pool := rpc.NewPool(func(ctx context.Context, addr string) (net.Conn, error) {
		return mux.Dial(ctx, addr, mux.TagRPC)
	}, Logger(t))
	t.Cleanup(func() { _ = pool.Close() })
	return wire.Client{Caller: pool, Addr: n.RaftAddr(), Timeout: 5 * time.Second}
}

// Faults are switches that make a node refuse some of the internal RPCs
// it receives, as if the network dropped them.
type Faults struct {
	dropStream  atomic.Bool
	refuseFence atomic.Bool
	diskFull    atomic.Bool
	mu          sync.Mutex
	custom      wire.Interceptor
}

// ErrInjected is what a refused call answers.
var ErrInjected = errInjected{}

type errInjected struct{}

func (errInjected) Error() string { return "fault injected by nodetest" }

// DropReplicaStream refuses the appends a segment leader streams to this
// node (epoch 1); fences and recovery/catch-up copies still get through.
func (f *Faults) DropReplicaStream(on bool) { f.dropStream.Store(on) }

// RefuseFence refuses recoveries' fences, as if this node were
// unreachable for recovery.
func (f *Faults) RefuseFence(on bool) { f.refuseFence.Store(on) }

// Disk sizes the node's data directory appears to have (its real file
// system is not consulted): 1 GiB, with DiskFreeBytes free while DiskFull
// is on (below the default 256 MiB minimum) and nearly all of it free
// otherwise.
const (
	DiskTotalBytes = 1 << 30
	DiskFreeBytes  = 1 << 20
)

// DiskFull makes the node's disk guard see a full disk (on) or a roomy
// one; the guard notices within its refresh period (250 ms).
func (f *Faults) DiskFull(on bool) { f.diskFull.Store(on) }

func (f *Faults) diskStat(string) (diskguard.Usage, error) {
	if f.diskFull.Load() {
		return diskguard.Usage{FreeBytes: DiskFreeBytes, TotalBytes: DiskTotalBytes}, nil
	}
	return diskguard.Usage{FreeBytes: DiskTotalBytes - DiskFreeBytes, TotalBytes: DiskTotalBytes}, nil
}

// Intercept installs (or, with nil, removes) an interceptor of its own.
func (f *Faults) Intercept(i wire.Interceptor) {
	f.mu.Lock()
	f.custom = i
	f.mu.Unlock()
}

func (f *Faults) intercept(method byte, payload []byte) error {
	switch method {
	case wire.MethodReplicaAppend:
		if f.dropStream.Load() {
			var req wire.ReplicaAppendRequest
			if req.Decode(payload) == nil && req.Epoch == 1 {
				return ErrInjected
			}
		}
	case wire.MethodReplicaFence:
		if f.refuseFence.Load() {
			return ErrInjected
		}
	}
	f.mu.Lock()
	custom := f.custom
	f.mu.Unlock()
	if custom != nil {
		return custom(method, payload)
	}
	return nil
}

// StartCluster starts size nodes: node 1 bootstraps, the others join
// through node 1; it waits until all are voters and know every address,
// and stops them all when the test ends. tweak may adjust each config.
func StartCluster(t testing.TB, size int, tweak func(*node.Config)) []*Node {
	t.Helper()
	return StartClusterWith(t, size, tweak, client.Options{})
}

// StartClusterWith is StartCluster whose nodes are dialed with opts (e.g.
// a TLS client configuration).
func StartClusterWith(t testing.TB, size int, tweak func(*node.Config), opts client.Options) []*Node {
	t.Helper()
	dir := t.TempDir()
	var nodes []*Node
	for i := 1; i <= size; i++ {
		cfg := Config(uint64(i), dir)
		if i > 1 {
			cfg.Join = []string{nodes[0].RaftAddr()}
		}
		if tweak != nil {
			tweak(&cfg)
		}
		tn := Start(t, cfg, nil)
		tn.ClientOptions = opts
		nodes = append(nodes, tn)
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); n.Stop(t) }()
		}
		wg.Wait()
	})
	c := Dial(t, nodes[0])
	Eventually(t, 30*time.Second, "all nodes voters", func() bool {
		return len(Metrics(t, c).MembershipConfig.Voters) == size
	})
	Eventually(t, 10*time.Second, "node addresses registered", func() bool {
		for _, n := range nodes {
			if len(n.Metadata().Nodes()) != size {
				return false
			}
		}
		return true
	})
	return nodes
}

// RaftLeader waits for and returns the node that leads Raft.
func RaftLeader(t testing.TB, nodes []*Node) *Node {
	t.Helper()
	var leader *Node
	Eventually(t, 20*time.Second, "raft leader", func() bool {
		for _, n := range nodes {
			if n.IsRaftLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Dial opens a client to the node, closed when the test ends; on a node
// with users (see Secure) it authenticates as AdminUser.
func Dial(t testing.TB, n *Node) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts := n.ClientOptions
	opts.Timeout = 30 * time.Second
	if n.Config.Security.Users.Enabled() {
		opts.User, opts.Password = AdminUser, AdminPassword
	}
	c, err := client.Dial(ctx, n.ClientAddr(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Metrics fetches and decodes METRICS.
func Metrics(t testing.TB, c *client.Client) status.Metrics {
	t.Helper()
	raw, err := c.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var m status.Metrics
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("metrics %s: %v", raw, err)
	}
	return m
}

// State fetches and decodes STATE of a topic.
func State(t testing.TB, c *client.Client, topic string) status.State {
	t.Helper()
	raw, err := c.State(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var s status.State
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("state %s: %v", raw, err)
	}
	return s
}
