package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/mux"
	"github.com/walrus-go/walrus/node/rpc"
	"github.com/walrus-go/walrus/node/server"
)

// Node is one Walrus cluster member.
type Node struct {
	cfg    Config
	id     uint64
	store  engine.SegmentStore
	logger *slog.Logger
	m      *metrics.Metrics

	raftLn   net.Listener
	clientLn net.Listener
	mux      *mux.Mux
	fsm      *metadata.FSM
	cons     *consensus.Consensus // set in Run before any loop starts
	pool     *rpc.Pool
	srv      *server.Server
	self     metadata.Node

	// stopping is closed when Run begins its shutdown.
	stopping chan struct{}
	ready    chan struct{}
	draining atomic.Bool // shutting down: refuse appends (handoff.go)
	// abrupt skips the graceful part of shutdown (handoff, cursor commit,
	// leadership transfer); tests set it to imitate a crash in-process.
	abrupt     atomic.Bool
	runOnce    atomic.Bool
	closed     atomic.Bool
	registered atomic.Bool

	leases     leaseTable
	writers    writerSet
	forwarders forwarderSet
	cursors    cursorSet
	peers      peerTable
	repl       replicaState // segment replication (replica.go)

	rollHints    chan string
	notLeaderLog rateLimit
	wg           sync.WaitGroup
}

// New validates cfg and binds the Raft and client listeners (so a port
// conflict fails here, and port 0 picks a free port whose address the
// accessors report). Call Run to start the node, or Close to release the
// listeners without running. The caller owns store and closes it after Run
// returns.
func New(cfg Config, store engine.SegmentStore, logger *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("node: invalid config: %w", err)
	}
	if store == nil {
		return nil, errors.New("node: nil store")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("node_id", cfg.NodeID)
	raftLn, err := net.Listen("tcp", net.JoinHostPort(cfg.RaftHost, strconv.Itoa(cfg.RaftPort)))
	if err != nil {
		return nil, fmt.Errorf("node: raft listener: %w", err)
	}
	clientLn, err := net.Listen("tcp", net.JoinHostPort(cfg.ClientHost, strconv.Itoa(cfg.ClientPort)))
	if err != nil {
		_ = raftLn.Close()
		return nil, fmt.Errorf("node: client listener: %w", err)
	}
	advHost := cfg.RaftAdvertiseHost
	if advHost == "" {
		advHost = cfg.RaftHost
	}
	raftPort := raftLn.Addr().(*net.TCPAddr).Port
	adv, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(advHost, strconv.Itoa(raftPort)))
	if err != nil {
		_ = raftLn.Close()
		_ = clientLn.Close()
		return nil, fmt.Errorf("node: raft_advertise_host %q: %w", advHost, err)
	}
	m := cfg.Metrics
	if m == nil {
		m = metrics.New(cfg.NodeID)
	}
	n := &Node{
		cfg:       cfg,
		id:        cfg.NodeID,
		store:     store,
		logger:    logger,
		m:         m,
		raftLn:    raftLn,
		clientLn:  clientLn,
		fsm:       metadata.NewFSM(),
		stopping:  make(chan struct{}),
		ready:     make(chan struct{}),
		rollHints: make(chan string, rollHintCap),
	}
	n.mux = mux.New(raftLn, adv, logger.With("component", "mux"))
	// Raft and the internal RPC share the Raft port: count both directions
	// of every connection on it (walrus_network_bytes_total{port="raft"}).
	n.mux.SetConnWrapper(func(c net.Conn) net.Conn { return m.CountConn(c, metrics.PortRaft) })
	n.pool = rpc.NewPool(func(ctx context.Context, addr string) (net.Conn, error) {
		return n.mux.Dial(ctx, addr, mux.TagRPC)
	}, logger)
	n.self = metadata.Node{ID: n.id, RaftAddr: adv.String(), RPCAddr: adv.String(), ClientAddr: clientLn.Addr().String()}
	n.leases.init()
	n.writers.init()
	n.forwarders.init()
	n.cursors.init()
	n.peers.init()
	scfg := cfg.Server
	scfg.MaxFrameBytes = cfg.MaxFrameBytes
	n.srv = server.New(scfg, n, logger.With("component", "server"))
	return n, nil
}

// ClientAddr is the bound client listener address.
func (n *Node) ClientAddr() string { return n.clientLn.Addr().String() }

// RaftAddr is the advertised Raft (and internal RPC) address.
func (n *Node) RaftAddr() string { return n.self.RaftAddr }

// ID is the node id.
func (n *Node) ID() uint64 { return n.id }

// Metrics returns the node's instrumentation.
func (n *Node) Metrics() *metrics.Metrics { return n.m }

// Ready is closed once Run has started Raft and every listener.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Close releases the listeners of a node whose Run was never called.
// After Run it is a no-op (Run releases everything itself).
func (n *Node) Close() error {
	if n.runOnce.Load() || !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	_ = n.clientLn.Close()
	_ = n.pool.Close()
	return n.mux.Close()
}

func (n *Node) goFunc(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// Run starts the node and blocks until ctx is cancelled; it then shuts
// down cleanly (client listener, loops, RPC, Raft) and returns nil. A
// start-up failure is returned as an error.
func (n *Node) Run(ctx context.Context) error {
	if !n.runOnce.CompareAndSwap(false, true) {
		return errors.New("node: Run called twice")
	}
	if n.closed.Load() {
		return errors.New("node: Run after Close")
	}
	n.logger.Info(fmt.Sprintf("Node %d booting", n.id), "raft_addr", n.self.RaftAddr, "client_addr", n.self.ClientAddr)

	loopCtx, cancelLoops := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelLoops()

	// The mux outlives the loops: Raft's transport must be shut down
	// before its listener goes away.
	muxCtx, cancelMux := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelMux()
	var muxWG sync.WaitGroup
	muxWG.Add(1)
	go func() {
		defer muxWG.Done()
		if err := n.mux.Serve(muxCtx); err != nil {
			n.logger.Error("mux stopped", "err", err)
		}
	}()

	cons, err := consensus.Open(consensus.Config{
		NodeID: n.id,
		Dir:    filepath.Join(n.cfg.DataDir, fmt.Sprintf("node_%d", n.id), "raft_meta"),
		Layer:  mux.NewRaftLayer(n.mux),
		FSM:    n.fsm,
		Timing: n.cfg.RaftTiming,
		Logger: n.logger,
	})
	if err != nil {
		cancelLoops()
		_ = n.clientLn.Close()
		_ = n.mux.Close()
		muxWG.Wait()
		_ = n.pool.Close()
		return err
	}
	n.cons = cons
	if !cons.HasExistingState() && len(n.cfg.Join) == 0 {
		if err := cons.Bootstrap(); err != nil {
			cancelLoops()
			_ = cons.Close()
			_ = n.clientLn.Close()
			_ = n.mux.Close()
			muxWG.Wait()
			_ = n.pool.Close()
			return err
		}
		n.logger.Info("bootstrapped a new cluster")
	}
	n.m.SetRaftSource(n.raftStats)
	n.m.SetClusterSource(n.clusterStats)
	// The node's own directory: several nodes may share one data_dir.
	n.m.SetDataDir(filepath.Join(n.cfg.DataDir, fmt.Sprintf("node_%d", n.id)))

	rpcSrv := rpc.NewServer(rpcHandler{n}, n.logger.With("component", "rpc"))
	n.goFunc(func() {
		if err := rpcSrv.Serve(loopCtx, n.mux.Listener(mux.TagRPC)); err != nil {
			n.logger.Error("internal rpc server stopped", "err", err)
		}
	})
	n.goFunc(func() { n.observeRaft(loopCtx) })
	n.goFunc(func() { n.clusterLoop(loopCtx) })
	n.goFunc(func() { n.leaseLoop(loopCtx) })
	n.goFunc(func() { n.monitorLoop(loopCtx) })
	n.goFunc(func() { n.cursorCommitLoop(loopCtx) })
	n.goFunc(func() { n.replicationLoop(loopCtx) })

	var httpSrv *metrics.HTTPServer
	if n.cfg.HTTPPort != 0 {
		httpSrv = metrics.NewHTTPServer(net.JoinHostPort(n.cfg.HTTPHost, strconv.Itoa(n.cfg.HTTPPort)), n.m, n.readiness, n.logger.With("component", "http"))
		if err := httpSrv.Start(loopCtx); err != nil {
			n.logger.Error("metrics http server failed to start", "err", err)
			httpSrv = nil
		}
	}

	if cons.HasExistingState() {
		n.awaitReplay(ctx)
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- n.srv.Serve(loopCtx, n.m.CountListener(n.clientLn, metrics.PortClient)) }()
	close(n.ready)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-srvDone:
		srvDone <- err
		if err != nil {
			runErr = fmt.Errorf("node: client listener: %w", err)
		}
	}

	// Shutdown: stop taking client requests, commit cursors, stop loops,
	// then Raft and the transport.
	n.logger.Info("node shutting down")
	close(n.stopping)
	_ = n.srv.Close()
	<-srvDone
	if httpSrv != nil {
		_ = httpSrv.Close()
	}
	if !n.abrupt.Load() {
		hctx, cancelHandoff := context.WithTimeout(context.Background(), handoffTimeout)
		n.handoff(hctx)
		cancelHandoff()
		commitCtx, cancelCommit := context.WithTimeout(context.Background(), time.Second)
		n.commitCursors(commitCtx)
		cancelCommit()
		n.transferLeadership()
	}
	cancelLoops()
	n.wg.Wait()
	n.forwarders.stopAll()
	n.writers.stopAll()
	n.stopReplicators()
	_ = n.pool.Close()
	if err := cons.Close(); err != nil {
		n.logger.Warn("raft shutdown", "err", err)
	}
	_ = n.mux.Close()
	muxWG.Wait()
	n.logger.Info("node stopped")
	return runErr
}

// replayWait bounds how long a restarting node waits for its Raft log to
// be applied before it serves clients (it needs a quorum to learn the
// commit index, which may take a while when the whole cluster restarts).
const replayWait = 10 * time.Second

// awaitReplay waits until the entries that were in the Raft log at start
// are applied, so a restarted node answers with its old state instead of
// "unknown topic" during the first election.
func (n *Node) awaitReplay(ctx context.Context) {
	r := n.cons.Raft()
	target := r.LastIndex()
	deadline := time.Now().Add(replayWait)
	for r.AppliedIndex() < target {
		if time.Now().After(deadline) {
			n.logger.Warn("serving clients before the Raft log is replayed", "applied", r.AppliedIndex(), "last_index", target)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (n *Node) readiness() (bool, string) {
	select {
	case <-n.ready:
	default:
		return false, "starting"
	}
	select {
	case <-n.stopping:
		return false, "shutting down"
	default:
	}
	if id, _ := n.cons.Leader(); id == 0 {
		return false, "no raft leader"
	}
	if ok, why := n.m.StorageHealthy(); !ok {
		return false, why
	}
	// Caught up: committed metadata is applied here, so STATE and routing
	// are not stale (a restarting or lagging node replays first).
	r := n.cons.Raft()
	if applied, commit := r.AppliedIndex(), r.CommitIndex(); applied+readyApplySlack < commit {
		return false, fmt.Sprintf("catching up: applied %d of %d committed raft entries", applied, commit)
	}
	return true, "ok"
}

// readyApplySlack is how many committed Raft entries may be waiting to be
// applied on a node that still counts as caught up (a busy node always has
// a few in flight).
const readyApplySlack = 100

// rateLimit lets one event through per period.
type rateLimit struct{ last atomic.Int64 }

func (r *rateLimit) allow(period time.Duration) bool {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(period) {
		return false
	}
	return r.last.CompareAndSwap(last, now)
}

// observeRaft counts elections and leader changes for the metrics.
func (n *Node) observeRaft(ctx context.Context) {
	ch := make(chan raft.Observation, 64)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	r := n.cons.Raft()
	r.RegisterObserver(obs)
	defer r.DeregisterObserver(obs)
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-ch:
			switch d := o.Data.(type) {
			case raft.LeaderObservation:
				// raft clears the leader (empty id) on every state change;
				// count only a leader becoming known.
				if d.LeaderID != "" {
					n.m.LeaderChanges.Inc()
				}
				n.logger.Info("raft leader changed", "leader", string(d.LeaderID), "leader_addr", string(d.LeaderAddr))
			case raft.RaftState:
				if d == raft.Candidate {
					n.m.Elections.Inc()
				}
				n.peers.setLeader(d == raft.Leader)
			}
		}
	}
}
