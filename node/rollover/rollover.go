// Package rollover owns the Raft leader's control loops over segments:
// the monitor that seals full segments and opens the next ones, the
// failover of a dead segment leader (and, for replicated topics, the
// recovery that fences the survivors and seals at a count covering every
// acknowledged entry), the re-replication of segments whose replica is
// gone, and the handoff of a node's open segments at a clean shutdown.
// Every one of them ends in sealAndOpen.
package rollover

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/placement"
)

// Config is the rollover part's share of the node's configuration.
type Config struct {
	Self              uint64
	MaxSegmentEntries uint64
	// MaxSegmentBytes and MaxSegmentAge also roll a non-empty open
	// segment over (0: off), so age limits work on quiet topics.
	MaxSegmentBytes      uint64
	MaxSegmentAge        time.Duration
	MonitorInterval      time.Duration
	FailureTimeout       time.Duration
	ReplicaRepairTimeout time.Duration
	HandoffOnShutdown    bool
	// FailoverInterval is how often dead segment leaders are looked for
	// (the heartbeat interval).
	FailoverInterval time.Duration
}

// Cluster is what the rollover part asks of the cluster part.
type Cluster interface {
	LiveVoters() ([]uint64, error)
	Alive(id uint64) bool
	AliveStrict(id uint64) bool
	// DiskFull: the node refuses appends (its replicas') on a full disk.
	DiskFull(id uint64) bool
	Heard(id uint64) bool
	LastSeen(id uint64) (time.Time, bool)
	PeerApplied(id uint64) uint64
	ReportedCount(id uint64, topic string, seg uint64) uint64
	TopicsAtLeast(min uint64) []string
	LeaderSince() time.Time
	ProposeDirect(ctx context.Context, cmd metadata.Command) error
	SendRollHint(ctx context.Context, topic string)
	Beat(ctx context.Context)
}

// Peer is one member's side of the segment calls a rollover makes (a
// wire.Client, or this node's own segment part).
type Peer interface {
	Fence(ctx context.Context, topic string, seg, min uint64) (count uint64, fenced bool, err error)
	Unfence(ctx context.Context, topic string, seg uint64) error
	ReplicaFence(ctx context.Context, topic string, seg, epoch uint64) (uint64, error)
	ReplicaAppend(ctx context.Context, topic string, seg, epoch, first uint64, entries [][]byte) (uint64, error)
	ReplicaPull(ctx context.Context, topic string, seg, count uint64, sources []uint64) (uint64, error)
	RecoveryRead(ctx context.Context, topic string, seg, off uint64, max int) ([][]byte, error)
	Stat(ctx context.Context, topic string, seg uint64) (entries, bytes uint64, err error)
}

// Segments is this node's segment part, for the shutdown handoff.
type Segments interface {
	Drain()
	Quiesce(ctx context.Context)
	Led() map[string]uint64
	Count(ctx context.Context, topic string, seg uint64) (uint64, error)
	AwaitReplicated(ctx context.Context, topic string, seg, count uint64)
	Confirmed(ctx context.Context, topic string, seg, count uint64) (uint64, error)
}

// Deps are the parts the rollover part uses.
type Deps struct {
	Cons     *consensus.Consensus
	FSM      *metadata.FSM
	Cluster  Cluster
	Peer     func(id uint64) Peer
	Segments Segments
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
}

// hintCap bounds queued "segment full" hints; extra hints are dropped
// (the periodic tick still catches the segment).
const hintCap = 256

// Rollover is the Raft leader's segment control.
type Rollover struct {
	cfg Config
	Deps
	hints chan string

	// deposed are open segments whose leader stepped down: recovered like
	// those of a dead leader. Pruned once the segment has moved.
	mu      sync.Mutex
	deposed map[segRef]time.Time
	// leaders knows which topics each node leads (failover suspects),
	// replicas where each topic's replicas are (under-replication).
	leaders  metadata.LeaderIndex
	replicas replicaIndex
}

// New builds the rollover part; Run runs its loops.
func New(cfg Config, d Deps) *Rollover {
	return &Rollover{cfg: cfg, Deps: d, hints: make(chan string, hintCap), deposed: map[segRef]time.Time{}}
}

// Run runs the monitor, failover and re-replication loops until ctx ends.
func (r *Rollover) Run(ctx context.Context) {
	done := make(chan struct{}, 2)
	go func() { r.failoverLoop(ctx); done <- struct{}{} }()
	go func() { r.replicationLoop(ctx); done <- struct{}{} }()
	r.monitorLoop(ctx)
	<-done
	<-done
}

// nextReplicas is the replica set of a topic's next segment led by leader.
func (r *Rollover) nextReplicas(topic string, leader uint64, live []uint64) []uint64 {
	t, ok := r.FSM.Topic(topic)
	if !ok {
		return nil
	}
	return placement.NextReplicas(max(t.ReplicationFactor, 1), leader, live)
}

// seal is one rollover to propose.
type seal struct {
	op    string // for the logs: rollover, failover, handoff
	topic string
	seg   uint64
	count uint64
	next  uint64
	live  []uint64
	// fencedOn is the node that fenced the segment for this rollover; a
	// rejected proposal unfences it there (0: nothing to unfence).
	fencedOn uint64
	// direct proposes through whichever node leads Raft (the handoff runs
	// on any node, during shutdown).
	direct bool
	start  time.Time
}

// sealAndOpen proposes sealing s.seg at s.count and opening the next
// segment on s.next. When the outcome is unknown (timeout, leadership
// lost) the entry may still commit, so a fence stays in place: the next
// attempt, on whichever node then leads, re-fences (getting the same count
// back) and re-proposes the same idempotent rollover. A proposal rejected
// by Apply never takes effect, so the fence is lifted.
func (r *Rollover) sealAndOpen(ctx context.Context, s seal) error {
	cmd := metadata.Rollover{Topic: s.topic, Segment: s.seg, Count: s.count, NextLeader: s.next, NextReplicas: r.nextReplicas(s.topic, s.next, s.live), Timed: true, OpenedMs: time.Now().UnixMilli()}
	var rejected, err error
	if s.direct {
		err = r.Cluster.ProposeDirect(ctx, cmd)
	} else {
		var res metadata.Result
		res, err = r.Cons.Propose(ctx, cmd)
		if err == nil && res.Err != nil {
			rejected, err = res.Err, res.Err
		}
	}
	r.Metrics.ObserveRollover(s.start, err)
	if err == nil {
		return nil
	}
	r.Logger.Error("Raft consensus failed", "op", s.op, "topic", s.topic, "segment", s.seg, "err", err)
	if rejected != nil && s.fencedOn != 0 {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if uerr := r.Peer(s.fencedOn).Unfence(uctx, s.topic, s.seg); uerr != nil {
			return fmt.Errorf("%w; unfence: %v", err, uerr)
		}
	}
	return err
}
