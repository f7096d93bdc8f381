package node

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/cluster"
	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/cursor"
	"github.com/walrus-go/walrus/node/diskguard"
	"github.com/walrus-go/walrus/node/group"
	"github.com/walrus-go/walrus/node/kafka"
	"github.com/walrus-go/walrus/node/kafka/kcoord"
	"github.com/walrus-go/walrus/node/kafka/kgroup"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/retention"
	"github.com/walrus-go/walrus/node/retry"
	"github.com/walrus-go/walrus/node/rollover"
	"github.com/walrus-go/walrus/node/router"
	"github.com/walrus-go/walrus/node/segment"
	"github.com/walrus-go/walrus/node/tlsconf"
	"github.com/walrus-go/walrus/node/topiclog"
	"github.com/walrus-go/walrus/node/wire"
)

// wire builds the parts and connects each to the small interfaces it
// uses. Parts that call a peer get peerOf, which returns this node's own
// implementation for itself and an RPC stub for any other node.
func (n *Node) wire(cons *consensus.Consensus, nodeDir string) *parts {
	p := &parts{self: n.cfg.NodeID, cons: cons, store: n.store}
	p.disk = diskguard.New(diskguard.Config{
		Node: p.self, Dir: nodeDir, MinFreeBytes: n.cfg.MinFreeBytes, MinFreePercent: n.cfg.MinFreePercent,
		Stat: n.cfg.DiskStat, Full: n.m.DiskFull, Refused: n.m.DiskFullRefusals, Logger: n.logger.With("component", "diskguard"),
	})
	loc := local{p}
	p.cluster = cluster.New(cluster.Config{Self: n.net.self, Join: n.cfg.Join, FailureTimeout: n.cfg.FailureTimeout}, cluster.Deps{
		Cons: cons, FSM: n.fsm, Caller: n.net.pool, Local: loc, Led: loc,
		Metrics: n.m, Logger: n.logger, Stopping: n.life.stopping,
		SelfDiskFull: func() bool { return p.disk.Full() },
	})
	p.seg = segment.New(segment.Config{
		Self: p.self, Dir: filepath.Join(nodeDir, "replica_meta"), MaxSegmentEntries: n.cfg.MaxSegmentEntries,
		FailureTimeout: n.cfg.FailureTimeout, LeaseSyncInterval: n.cfg.LeaseSyncInterval,
		BootIndex: bootIndex(cons, len(n.cfg.Join) > 0),
	}, segment.Deps{
		Store: n.store, FSM: n.fsm, Contact: p.cluster,
		Peer:     func(id uint64) segment.Peer { return p.peerOf(id) },
		Hint:     func(topic string) { p.roll.Hint(topic) },
		StepDown: p.cluster.StepDown,
		Floor:    func(ctx context.Context, topic string, seg uint64) int64 { return p.topics.TimeBefore(ctx, topic, seg) },
		Disk:     p.disk, Metrics: n.m, Logger: n.logger,
	})
	p.cursors = cursor.New(cursor.Deps{
		Self: p.self, Cons: cons, FSM: n.fsm, Live: p.cluster,
		Peer:    func(id uint64) cursor.Reader { return p.peerOf(id) },
		Metrics: n.m, Logger: n.logger, CommitInterval: n.cfg.CursorCommitInterval,
	})
	p.topics = topiclog.New(topiclog.Deps{
		Self: p.self, FSM: n.fsm, Live: p.cluster, Metrics: n.m, Local: p.seg,
		Peer: func(id uint64) topiclog.Holder { return p.peerOf(id) },
	})
	p.groups = group.New(group.Deps{
		Cons: cons, FSM: n.fsm, Log: p.topics, Logger: n.logger, Meter: n.m,
		CommitInterval: n.cfg.CursorCommitInterval,
	})
	p.retain = retention.New(retention.Deps{
		Cons: cons, FSM: n.fsm, Times: p.topics, Logger: n.logger, Interval: n.cfg.RetentionInterval, Defaults: n.cfg.Retention,
		Peer: func(id uint64) retention.Holder { return p.peerOf(id) },
	})
	p.janitor = &retention.Janitor{Store: n.store, FSM: n.fsm, Forget: p.seg, Logger: n.logger, Interval: n.cfg.RetentionInterval}
	p.router = router.New(router.Config{
		Self: p.self, AutoCreateTopics: n.cfg.AutoCreateTopics, ReplicationFactor: n.cfg.ReplicationFactor, AckQuorum: n.cfg.AckQuorum,
	}, router.Deps{
		Cons: cons, FSM: n.fsm, Leader: p.cluster, Local: p.seg,
		Peer:    func(id uint64) router.Forwarder { return p.cluster.Client(id) },
		Metrics: n.m, Logger: n.logger, Stopping: n.life.stopping,
		Reserved: kafka.Reserved,
	})
	p.roll = rollover.New(rollover.Config{
		Self: p.self, MaxSegmentEntries: n.cfg.MaxSegmentEntries, MonitorInterval: n.cfg.MonitorInterval,
		MaxSegmentBytes: n.cfg.MaxSegmentBytes, MaxSegmentAge: n.cfg.MaxSegmentAge,
		FailureTimeout: n.cfg.FailureTimeout, ReplicaRepairTimeout: n.cfg.ReplicaRepairTimeout,
		HandoffOnShutdown: n.cfg.HandoffOnShutdown, FailoverInterval: cluster.HeartbeatInterval,
	}, rollover.Deps{
		Cons: cons, FSM: n.fsm, Cluster: p.cluster, Segments: p.seg,
		Peer:    func(id uint64) rollover.Peer { return p.peerOf(id) },
		Metrics: n.m, Logger: n.logger,
	})
	return p
}

// bootIndex is segment.Config.BootIndex for this start.
func bootIndex(cons *consensus.Consensus, joins bool) uint64 {
	switch {
	case cons.HasExistingState():
		return max(cons.Raft().LastIndex(), 1)
	case !joins:
		return 1 // bootstraps a new cluster: nothing is inherited
	}
	return 0
}

// peer is every call one node makes to another's segments: a wire.Client,
// or local for this node itself.
type peer interface {
	Read(ctx context.Context, topic string, seg, off uint64, max int) ([][]byte, error)
	RecoveryRead(ctx context.Context, topic string, seg, off uint64, max int) ([][]byte, error)
	Fence(ctx context.Context, topic string, seg, min uint64) (uint64, bool, error)
	Unfence(ctx context.Context, topic string, seg uint64) error
	ReplicaFence(ctx context.Context, topic string, seg, epoch uint64) (uint64, error)
	ReplicaAppend(ctx context.Context, topic string, seg, epoch, first uint64, entries [][]byte) (uint64, error)
	ReplicaAppendAsync(topic string, seg, epoch, first uint64, entries [][]byte, cb func(uint64, error))
	ReplicaPull(ctx context.Context, topic string, seg, count uint64, sources []uint64) (uint64, error)
	Fetch(ctx context.Context, req *wire.FetchRequest) (*wire.FetchReply, error)
	Stat(ctx context.Context, topic string, seg uint64) (entries, bytes uint64, err error)
}

var (
	_ peer         = wire.Client{}
	_ peer         = local{}
	_ wire.Handler = local{}
)

func (p *parts) peerOf(id uint64) peer {
	if id == p.self {
		return local{p}
	}
	return p.cluster.Client(id)
}

// local is this node's side of every internal call: the internal RPC
// handler, the Raft-leader calls the cluster part routes here when this
// node leads, and this node as its own peer. Each method hands the call to
// the part that owns it.
type local struct{ p *parts }

func (l local) Append(ctx context.Context, topic string, entries [][]byte) error {
	return l.p.seg.Append(ctx, topic, entries)
}

func (l local) AppendAsync(topic string, entries [][]byte, cb func(error)) bool {
	return l.p.seg.AppendAsync(topic, entries, cb)
}

func (l local) Get(ctx context.Context, req *wire.GetRequest) ([][]byte, bool, error) {
	return l.p.cursors.Get(ctx, req)
}

func (l local) Read(ctx context.Context, topic string, seg, off uint64, limit int) ([][]byte, error) {
	return l.p.seg.Read(ctx, topic, seg, off, min(max(limit, 1), cursor.MaxGetBatch))
}

func (l local) RecoveryRead(ctx context.Context, topic string, seg, off uint64, limit int) ([][]byte, error) {
	return l.p.seg.RecoveryRead(ctx, topic, seg, off, min(max(limit, 1), cursor.MaxGetBatch))
}

func (l local) StepDown(ctx context.Context, topic string, seg uint64) error {
	return l.p.roll.StepDown(ctx, topic, seg)
}

// CommitCursors commits the shared cursors and the group offsets now (a
// node stopping asks the Raft leader).
func (l local) CommitCursors(ctx context.Context) error {
	return errors.Join(l.p.cursors.Commit(ctx), l.p.groups.Commit(ctx))
}

func (l local) Fetch(ctx context.Context, req *wire.FetchRequest) (*wire.FetchReply, error) {
	return l.p.seg.Fetch(ctx, req)
}

func (l local) Stat(ctx context.Context, topic string, seg uint64) (uint64, uint64, error) {
	info, err := l.p.store.Stat(ctx, engine.SegmentID{Topic: topic, Segment: seg})
	return info.Entries, info.Bytes, err
}

func (l local) Group(ctx context.Context, req *wire.GroupRequest) (*wire.GroupReply, error) {
	return l.p.groups.Handle(ctx, req)
}

func (l local) Propose(ctx context.Context, cmd []byte) (metadata.Result, error) {
	return l.p.cluster.ProposeLocal(ctx, cmd)
}

func (l local) CreateTopic(ctx context.Context, topic string, rf, ack int) error {
	return l.p.router.CreateTopicLocal(ctx, topic, rf, ack)
}

func (l local) Join(ctx context.Context, id uint64, addr string) error {
	return l.p.cluster.Join(ctx, id, addr)
}

func (l local) Heartbeat(ctx context.Context, hb *wire.Heartbeat) error {
	return l.p.cluster.Heartbeat(ctx, hb)
}

func (l local) Fence(ctx context.Context, topic string, seg, min uint64) (uint64, bool, error) {
	return l.p.seg.Fence(ctx, topic, seg, min)
}

func (l local) Unfence(ctx context.Context, topic string, seg uint64) error {
	return l.p.seg.Unfence(ctx, topic, seg)
}

func (l local) ReadIndex(ctx context.Context) (uint64, error) { return l.p.cluster.ReadIndex(ctx) }

func (l local) RemoveNode(ctx context.Context, id uint64) error {
	return l.p.cluster.RemoveNodeLocal(ctx, id)
}

func (l local) RollHint(ctx context.Context, topic string) error {
	return l.p.roll.RollHint(ctx, topic)
}

func (l local) ReplicaAppend(ctx context.Context, topic string, seg, epoch, first uint64, entries [][]byte) (uint64, error) {
	return l.p.seg.ReplicaAppend(ctx, topic, seg, epoch, first, entries)
}

func (l local) ReplicaAppendAsync(topic string, seg, epoch, first uint64, entries [][]byte, cb func(uint64, error)) {
	l.p.seg.ReplicaAppendAsync(topic, seg, epoch, first, entries, cb)
}

func (l local) ReplicaFence(ctx context.Context, topic string, seg, epoch uint64) (uint64, error) {
	return l.p.seg.ReplicaFence(ctx, topic, seg, epoch)
}

func (l local) ReplicaPull(ctx context.Context, topic string, seg, count uint64, sources []uint64) (uint64, error) {
	return l.p.seg.ReplicaPull(ctx, topic, seg, count, sources)
}

func (l local) OpenCounts(ctx context.Context) []wire.OpenSegment { return l.p.seg.OpenCounts(ctx) }
func (l local) ChangedCounts(ctx context.Context) []wire.OpenSegment {
	return l.p.seg.ChangedCounts(ctx)
}

// rpcHandler serves the internal RPC: fault injection first (tests), then
// the wire dispatcher onto local.
type rpcHandler struct {
	p         *parts
	intercept wire.Interceptor
}

func (h rpcHandler) HandleRPC(ctx context.Context, method byte, payload []byte) ([]byte, error) {
	if h.intercept != nil {
		if err := h.intercept(method, payload); err != nil {
			return nil, wire.ToRPC(err)
		}
	}
	if method < wire.MethodReplicaAppend {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, retry.RequestTimeout)
		defer cancel()
	}
	return wire.Dispatch(ctx, local{h.p}, method, payload)
}

func (h rpcHandler) HandleRPCAsync(ctx context.Context, method byte, payload []byte, reply func([]byte, error)) bool {
	if method != wire.MethodAppend && method != wire.MethodReplicaAppend {
		return false // served by HandleRPC (and intercepted there)
	}
	if h.intercept != nil {
		if err := h.intercept(method, payload); err != nil {
			reply(nil, wire.ToRPC(err))
			return true
		}
	}
	return wire.DispatchAsync(ctx, local{h.p}, method, payload, reply)
}

// serveKafka starts the Kafka listener when it is configured; the
// returned func stops it and waits for its connections.
func (n *Node) serveKafka(ctx context.Context, p *parts) (stop func()) {
	if n.net.kafkaLn == nil {
		return func() {}
	}
	groups := kcoord.New(kcoord.Deps{Self: p.self, Lead: p.cons, Nodes: n.fsm, Live: p.cluster,
		Offsets: kcoord.Offsets{Store: p.cluster, Commits: n.fsm},
		Config:  kgroup.Config{Logger: n.logger.With("component", "kafka-groups")}})
	p.kafka = kafka.New(kafka.Config{Self: p.self, AutoCreateTopics: n.cfg.AutoCreateTopics, DefaultRetention: n.cfg.Retention,
		OnAuthFailure: func(r string) { n.m.AuthFailures.WithLabelValues("kafka", r).Inc() }},
		kafka.Deps{FSM: n.fsm, Log: p.topics, Append: p.seg, Admin: p.router, Live: p.cluster, Groups: groups,
			Users: n.cfg.Security.Users, ACL: n.cfg.Security.ACL, Logger: n.logger.With("component", "kafka")})
	ln := n.m.CountListener(n.net.kafkaLn, metrics.PortKafka)
	if cfg := n.ListenerTLS(); cfg != nil {
		ln = tlsconf.NewListener(ln, cfg, n.logger.With("component", "kafka"))
	}
	done := p.kafka.Start(ctx, ln)
	return func() { p.kafka.Close(); groups.Close(); <-done }
}

func (n *Node) closeKafkaLn() {
	if n.net.kafkaLn != nil {
		_ = n.net.kafkaLn.Close()
	}
}
