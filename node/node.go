package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/access"
	"github.com/walrus-go/walrus/node/cluster"
	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/cursor"
	"github.com/walrus-go/walrus/node/diskguard"
	"github.com/walrus-go/walrus/node/group"
	"github.com/walrus-go/walrus/node/kafka"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/mux"
	"github.com/walrus-go/walrus/node/retention"
	"github.com/walrus-go/walrus/node/rollover"
	"github.com/walrus-go/walrus/node/router"
	"github.com/walrus-go/walrus/node/rpc"
	"github.com/walrus-go/walrus/node/segment"
	"github.com/walrus-go/walrus/node/server"
	"github.com/walrus-go/walrus/node/statedoc"
	"github.com/walrus-go/walrus/node/tlsconf"
	"github.com/walrus-go/walrus/node/topiclog"
)

// Node is one Walrus cluster member: the wiring of its parts.
type Node struct {
	cfg    Config
	store  engine.SegmentStore
	logger *slog.Logger
	m      *metrics.Metrics
	fsm    *metadata.FSM
	net    endpoints
	// parts is set by Run before the client listener serves.
	parts *parts
	life  lifecycle
	guard *access.Guard // ACL checks in front of Handle
}

// endpoints are the node's listeners and transports.
type endpoints struct {
	raftLn, clientLn net.Listener
	kafkaLn          net.Listener // nil: the Kafka listener is off
	mux              *mux.Mux
	pool             *rpc.Pool
	srv              *server.Server
	self             metadata.Node
	tls              *tlsconf.Set // nil members: plaintext
}

// lifecycle is the state of Run and Close.
type lifecycle struct {
	// stopping is closed when Run begins its shutdown; ready once Run has
	// started Raft and every listener.
	stopping, ready chan struct{}
	runOnce, closed atomic.Bool
	// abort skips the graceful part of shutdown (Abort).
	abort atomic.Bool
}

// parts are the node's concerns, one package each.
type parts struct {
	self    uint64
	cons    *consensus.Consensus
	cluster *cluster.Cluster
	seg     *segment.Manager
	router  *router.Router
	cursors *cursor.Cursors
	roll    *rollover.Rollover
	topics  *topiclog.Log
	groups  *group.Coordinator
	retain  *retention.Enforcer
	janitor *retention.Janitor
	store   engine.SegmentStore
	disk    *diskguard.Guard
	kafka   *kafka.Server // nil: the Kafka listener is off
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
	m := cfg.Metrics
	if m == nil {
		m = metrics.New(cfg.NodeID)
	}
	sec, err := tlsconf.NewSet(cfg.TLS, cfg.ClusterTLS, logger, m.SetTLSCertExpiry)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
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
		_, _ = raftLn.Close(), clientLn.Close()
		return nil, fmt.Errorf("node: raft_advertise_host %q: %w", advHost, err)
	}
	var kafkaLn net.Listener
	if cfg.KafkaPort != 0 {
		kafkaLn, err = net.Listen("tcp", net.JoinHostPort(cfg.KafkaHost, strconv.Itoa(max(cfg.KafkaPort, 0))))
	}
	if err != nil {
		_, _ = raftLn.Close(), clientLn.Close()
		return nil, fmt.Errorf("node: kafka listener: %w", err)
	}
	n := &Node{
		cfg:    cfg,
		store:  store,
		logger: logger,
		m:      m,
		fsm:    metadata.NewFSM(),
		life:   lifecycle{stopping: make(chan struct{}), ready: make(chan struct{})},
	}
	e := &n.net
	e.raftLn, e.clientLn, e.kafkaLn, e.tls = raftLn, clientLn, kafkaLn, sec
	e.mux = mux.New(raftLn, adv, logger.With("component", "mux"))
	if sec.Cluster != nil {
		e.mux.SetTLS(sec.Cluster.ServerConfig(), sec.Cluster.PeerClientConfig)
	}
	// Raft and the internal RPC share the Raft port: count both directions
	// of every connection on it (walrus_network_bytes_total{port="raft"}).
	e.mux.SetConnWrapper(func(c net.Conn) net.Conn { return m.CountConn(c, metrics.PortRaft) })
	e.pool = rpc.NewPool(func(ctx context.Context, addr string) (net.Conn, error) {
		return e.mux.Dial(ctx, addr, mux.TagRPC)
	}, logger)
	e.self = metadata.Node{ID: cfg.NodeID, RaftAddr: adv.String(), RPCAddr: adv.String(), ClientAddr: clientLn.Addr().String()}
	if kafkaLn != nil {
		e.self.KafkaAddr = kafkaLn.Addr().String()
	}
	scfg := cfg.Server
	scfg.MaxFrameBytes = cfg.MaxFrameBytes
	scfg.Auth = cfg.Security.Users
	scfg.OnAuthFailure = func(reason string) { m.AuthFailures.WithLabelValues("client", reason).Inc() }
	n.guard = &access.Guard{ACL: cfg.Security.ACL, AutoCreate: cfg.AutoCreateTopics, Exists: func(t string) bool {
		_, ok := n.fsm.Topic(t)
		return ok
	}, Topic: func(log string) string { t, _ := kafka.SplitLogName(log); return t }}
	e.srv = server.New(scfg, n, logger.With("component", "server"))
	return n, nil
}

// ClientAddr is the bound client listener address.
func (n *Node) ClientAddr() string { return n.net.clientLn.Addr().String() }

// RaftAddr is the advertised Raft (and internal RPC) address.
func (n *Node) RaftAddr() string { return n.net.self.RaftAddr }

// KafkaAddr is the bound Kafka listener address ("" when it is off).
func (n *Node) KafkaAddr() string { return n.net.self.KafkaAddr }

// ReloadTLS reads the TLS files again now (the daemon calls it on
// SIGHUP); a source whose files fail keeps its certificate in use.
func (n *Node) ReloadTLS() error { return n.net.tls.Reload() }

// ListenerTLS is the TLS configuration of a client-facing listener, nil
// when tls.cert_file is not set: the client and HTTP ports use it, and so
// must any new listener (the Kafka port). Reloads apply to later
// handshakes; wrap the listener with tlsconf.NewListener.
func (n *Node) ListenerTLS() *tls.Config {
	if c := n.net.tls.Client; c != nil {
		return c.ServerConfig()
	}
	return nil
}

// ID is the node id.
func (n *Node) ID() uint64 { return n.cfg.NodeID }

// Metrics returns the node's instrumentation.
func (n *Node) Metrics() *metrics.Metrics { return n.m }

// Metadata is the node's applied copy of the cluster metadata (read it,
// never apply to it).
func (n *Node) Metadata() *metadata.FSM { return n.fsm }

// Consensus is the node's Raft handle once Run has started (nil before).
func (n *Node) Consensus() *consensus.Consensus {
	if p := n.parts; p != nil {
		return p.cons
	}
	return nil
}

// Ready is closed once Run has started Raft and every listener.
func (n *Node) Ready() <-chan struct{} { return n.life.ready }

// Abort makes Run's shutdown skip its graceful part (handoff, final cursor
// commit, leadership transfer), as if the process died; cancel Run's
// context after it. Crash tests use it in-process.
func (n *Node) Abort() { n.life.abort.Store(true) }

// Close releases the listeners of a node whose Run was never called.
// After Run it is a no-op (Run releases everything itself).
func (n *Node) Close() error {
	if n.life.runOnce.Load() || !n.life.closed.CompareAndSwap(false, true) {
		return nil
	}
	_ = n.net.clientLn.Close()
	n.closeKafkaLn()
	_ = n.net.pool.Close()
	return n.net.mux.Close()
}

// Run starts the node and blocks until ctx is cancelled; it then shuts
// down cleanly and returns nil. A start-up failure is returned as an
// error. Start and stop happen here, in this order: mux, Raft, the parts'
// loops, HTTP, client listener; then client listener, HTTP, handoff and
// final cursor commit, loops, forwarders, writers and replicators, RPC
// pool, Raft, mux.
func (n *Node) Run(ctx context.Context) error {
	if !n.life.runOnce.CompareAndSwap(false, true) {
		return errors.New("node: Run called twice")
	}
	if n.life.closed.Load() {
		return errors.New("node: Run after Close")
	}
	n.logger.Info(fmt.Sprintf("Node %d booting", n.cfg.NodeID), "raft_addr", n.net.self.RaftAddr, "client_addr", n.net.self.ClientAddr)

	// The mux outlives the loops: Raft's transport must be shut down
	// before its listener goes away.
	muxCtx, cancelMux := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelMux()
	var muxWG sync.WaitGroup
	muxWG.Add(1)
	go func() {
		defer muxWG.Done()
		if err := n.net.mux.Serve(muxCtx); err != nil {
			n.logger.Error("mux stopped", "err", err)
		}
	}()
	nodeDir := filepath.Join(n.cfg.DataDir, fmt.Sprintf("node_%d", n.cfg.NodeID))
	cons, err := n.openConsensus(nodeDir)
	if err != nil {
		_ = n.net.clientLn.Close()
		n.closeKafkaLn()
		_ = n.net.mux.Close()
		muxWG.Wait()
		_ = n.net.pool.Close()
		return err
	}
	p := n.wire(cons, nodeDir)
	n.parts = p
	n.m.SetRaftSource(n.raftStats)
	n.m.SetClusterSource(func() metrics.ClusterStats { return statedoc.ClusterStats(n.fsm, n.cfg.NodeID) })
	// The node's own directory: several nodes may share one data_dir.
	n.m.SetDataDir(nodeDir)

	loopCtx, cancelLoops := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelLoops()
	var loops sync.WaitGroup
	goLoop := func(f func(context.Context)) {
		loops.Add(1)
		go func() {
			defer loops.Done()
			f(loopCtx)
		}()
	}
	rpcSrv := rpc.NewServer(rpcHandler{p: p, intercept: n.cfg.Intercept}, n.logger.With("component", "rpc"))
	goLoop(func(ctx context.Context) {
		if err := rpcSrv.Serve(ctx, n.net.mux.Listener(mux.TagRPC)); err != nil {
			n.logger.Error("internal rpc server stopped", "err", err)
		}
	})
	goLoop(p.cluster.Run)
	goLoop(p.seg.Run)
	goLoop(p.roll.Run)
	goLoop(p.cursors.Run)
	goLoop(p.groups.Run)
	goLoop(p.retain.Run)
	goLoop(p.janitor.Run)
	goLoop(func(ctx context.Context) { n.net.tls.Watch(ctx, n.cfg.TLSReloadInterval) })

	var httpSrv *metrics.HTTPServer
	if n.cfg.HTTPPort != 0 {
		httpSrv = metrics.NewHTTPServer(net.JoinHostPort(n.cfg.HTTPHost, strconv.Itoa(n.cfg.HTTPPort)), n.m, n.readiness, n.logger.With("component", "http"))
		sec := n.cfg.Security
		httpSrv.RequireAuth(metrics.HTTPAuth{Metrics: sec.MetricsAuth, Healthz: sec.HealthzAuth, Check: sec.HTTPCheck})
		if n.cfg.HTTPPprof {
			httpSrv.EnablePprof()
		}
		if cfg := n.ListenerTLS(); cfg != nil {
			httpSrv.SetTLS(cfg)
		}
		if err := httpSrv.Start(loopCtx); err != nil {
			n.logger.Error("metrics http server failed to start", "err", err)
			httpSrv = nil
		}
	}
	if cons.HasExistingState() {
		n.awaitReplay(ctx)
	}
	srvDone := make(chan error, 1)
	clientLn := n.m.CountListener(n.net.clientLn, metrics.PortClient)
	if cfg := n.ListenerTLS(); cfg != nil {
		clientLn = tlsconf.NewListener(clientLn, cfg, n.logger.With("component", "server"))
	}
	go func() { srvDone <- n.net.srv.Serve(loopCtx, clientLn) }()
	stopKafka := n.serveKafka(loopCtx, p)
	close(n.life.ready)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-srvDone:
		srvDone <- err
		if err != nil {
			runErr = fmt.Errorf("node: client listener: %w", err)
		}
	}

	n.logger.Info("node shutting down")
	close(n.life.stopping)
	_ = n.net.srv.Close()
	<-srvDone
	stopKafka()
	if httpSrv != nil {
		_ = httpSrv.Close()
	}
	if !n.life.abort.Load() {
		hctx, cancel := context.WithTimeout(context.Background(), handoffTimeout)
		p.roll.Handoff(hctx)
		cancel()
		p.commitCursorsAtShutdown(n.logger)
		p.cluster.TransferLeadership()
	}
	cancelLoops()
	loops.Wait()
	p.router.Close()
	p.seg.Close()
	_ = n.net.pool.Close()
	if err := cons.Close(); err != nil {
		n.logger.Warn("raft shutdown", "err", err)
	}
	_ = n.net.mux.Close()
	muxWG.Wait()
	n.logger.Info("node stopped")
	return runErr
}

// commitCursorsAtShutdown commits the shared cursors before this node
// leaves: on the Raft leader directly, elsewhere by asking the leader
// while this node still counts towards the Raft quorum (when the whole
// cluster stops at once, the followers must not leave before the last
// positions are committed). A failure is an error: the next GETs will
// redeliver what was handed out since the last commit.
func (p *parts) commitCursorsAtShutdown(logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var err error
	if p.cons.IsLeader() {
		err = errors.Join(p.cursors.Commit(ctx), p.groups.Commit(ctx))
	} else {
		err = p.cluster.CommitCursors(ctx)
	}
	if err != nil {
		logger.Error("shutdown: committing the shared cursors or group offsets failed; GETs and READs may redeliver entries handed out since the last commit", "err", err)
	}
}

// handoffTimeout bounds the graceful handoff at shutdown.
const handoffTimeout = 5 * time.Second

// openConsensus opens Raft and bootstraps a new one-node cluster when
// there is no Raft state and nothing to join.
func (n *Node) openConsensus(nodeDir string) (*consensus.Consensus, error) {
	cons, err := consensus.Open(consensus.Config{
		NodeID: n.cfg.NodeID,
		Dir:    filepath.Join(nodeDir, "raft_meta"),
		Layer:  mux.NewRaftLayer(n.net.mux),
		FSM:    n.fsm,
		Timing: n.cfg.RaftTiming,
		Logger: n.logger,
	})
	if err != nil {
		return nil, err
	}
	if !cons.HasExistingState() && len(n.cfg.Join) == 0 {
		if err := cons.Bootstrap(); err != nil {
			_ = cons.Close()
			return nil, err
		}
		n.logger.Info("bootstrapped a new cluster")
	}
	return cons, nil
}

// replayWait bounds how long a restarting node waits for its Raft log to
// be applied before it serves clients (it needs a quorum to learn the
// commit index, which may take a while when the whole cluster restarts).
const replayWait = 10 * time.Second

// awaitReplay waits until the entries that were in the Raft log at start
// are applied, so a restarted node answers with its old state instead of
// "unknown topic" during the first election.
func (n *Node) awaitReplay(ctx context.Context) {
	r := n.parts.cons.Raft()
	target := r.LastIndex()
	deadline := time.NewTimer(replayWait)
	defer deadline.Stop()
	for r.AppliedIndex() < target {
		// No-op and configuration entries do not signal Changed: re-check
		// every few milliseconds as well.
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-deadline.C:
			t.Stop()
			n.logger.Warn("serving clients before the Raft log is replayed", "applied", r.AppliedIndex(), "last_index", target)
			return
		case <-n.fsm.Changed():
		case <-t.C:
		}
		t.Stop()
	}
}

func (n *Node) readiness() (bool, string) {
	select {
	case <-n.life.ready:
	default:
		return false, "starting"
	}
	select {
	case <-n.life.stopping:
		return false, "shutting down"
	default:
	}
	cons := n.parts.cons
	if id, _ := cons.Leader(); id == 0 {
		return false, "no raft leader"
	}
	if ok, why := n.m.StorageHealthy(); !ok {
		return false, why
	}
	// Caught up: committed metadata is applied here, so STATE and routing
	// are not stale (a restarting or lagging node replays first).
	r := cons.Raft()
	if applied, commit := r.AppliedIndex(), r.CommitIndex(); applied+readyApplySlack < commit {
		return false, fmt.Sprintf("catching up: applied %d of %d committed raft entries", applied, commit)
	}
	return true, "ok"
}

// readyApplySlack is how many committed Raft entries may be waiting to be
// applied on a node that still counts as caught up (a busy node always has
// a few in flight).
const readyApplySlack = 100

// Peer is what this node last heard from node id in its heartbeats.
func (n *Node) Peer(id uint64) (cluster.Progress, bool) {
	if p := n.parts; p != nil {
		return p.cluster.Peer(id)
	}
	return cluster.Progress{}, false
}

// ReportedCount is the count node id last reported (heartbeats) for a
// segment it leads (tests).
func (n *Node) ReportedCount(id uint64, topic string, seg uint64) uint64 {
	if p := n.parts; p != nil {
		return p.cluster.ReportedCount(id, topic, seg)
	}
	return 0
}
