// Package cluster owns membership and the view of the other nodes: the
// join of a new node, heartbeats to every member with this node's Raft
// progress and the open segments it leads, the liveness verdicts drawn
// from them, lease freshness (contact with the Raft leader), the address
// book, promotion of caught-up learners, re-addressing of restarted
// members, and every call or proposal that must run on the Raft leader
// (run locally when this node leads, sent there otherwise).
//
// Lock order: Cluster.mu is a leaf.
package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/retry"
	"github.com/walrus-go/walrus/node/wire"
)

// Membership timing.
const (
	HeartbeatInterval = 250 * time.Millisecond
	joinRetryInterval = 500 * time.Millisecond
	// promoteLagEntries: a non-voter is promoted once its applied index is
	// within this many entries of the leader's commit index.
	promoteLagEntries = 64
	// RPCTimeout bounds one internal RPC.
	RPCTimeout = 5 * time.Second
)

// Config is the cluster part's share of the node's configuration.
type Config struct {
	Self           metadata.Node
	Join           []string
	FailureTimeout time.Duration
}

// Progress is what this node knows of another node from its heartbeats.
type Progress struct {
	LastIndex uint64
	Applied   uint64
	Seen      time.Time
	// RaftAddr is the address the peer advertises now.
	RaftAddr string
	// DiskFull: the peer refuses appends on a full disk.
	DiskFull bool
}

// SegmentRef names a segment.
type SegmentRef struct {
	Topic   string
	Segment uint64
}

// LeaderLocal is what this node does as the Raft leader for calls that
// other parts own (topic creation, the shared cursors, rollover hints).
type LeaderLocal interface {
	CreateTopic(ctx context.Context, topic string, rf, ack int) error
	Get(ctx context.Context, req *wire.GetRequest) ([][]byte, bool, error)
	StepDown(ctx context.Context, topic string, seg uint64) error
	CommitCursors(ctx context.Context) error
	Group(ctx context.Context, req *wire.GroupRequest) (*wire.GroupReply, error)
}

// Led lists the open segments this node leads, with their counts.
type Led interface {
	OpenCounts(ctx context.Context) []wire.OpenSegment
	// ChangedCounts lists those whose count changed since the last call.
	ChangedCounts(ctx context.Context) []wire.OpenSegment
}

// Deps are the parts the cluster part uses.
type Deps struct {
	Cons    *consensus.Consensus
	FSM     *metadata.FSM
	Caller  wire.Caller
	Local   LeaderLocal
	Led     Led
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Stopping is closed when the node begins its shutdown.
	Stopping <-chan struct{}
	// SelfDiskFull reports whether this node refuses appends on a full
	// disk (told in heartbeats; nil: never).
	SelfDiskFull func() bool
}

// Cluster is this node's membership and view of the others.
type Cluster struct {
	cfg Config
	Deps

	mu    sync.Mutex
	peers map[uint64]Progress
	// open: per peer, the open segments it reported leading (topic ->
	// segment and count), replaced by its full heartbeats, merged from
	// its deltas (beat.go).
	open map[uint64]map[string]segCount
	beat beatState
	// leaderSince is when this node last became Raft leader (zero when it
	// is not); liveness verdicts wait FailureTimeout after it.
	leaderSince time.Time

	registered atomic.Bool
	// lastTick is when the pause watchdog last ran (unix ns). A watchdog
	// that has not run for FailureTimeout/2 means this node was paused or
	// starved: its view of the others is stale, so it judges nobody dead.
	lastTick atomic.Int64
}

// New builds the cluster part; Run runs its loop.
func New(cfg Config, d Deps) *Cluster {
	return &Cluster{cfg: cfg, Deps: d, peers: map[uint64]Progress{}, open: map[uint64]map[string]segCount{}, beat: beatState{lastFull: map[uint64]time.Time{}}}
}

// ID is this node's id.
func (c *Cluster) ID() uint64 { return c.cfg.Self.ID }

// Heartbeat is the receiving side of a heartbeat (wire.Handler).
func (c *Cluster) Heartbeat(_ context.Context, hb *wire.Heartbeat) error {
	c.Record(hb)
	return nil
}

// Peers returns a copy of the peer table.
func (c *Cluster) Peers() map[uint64]Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.peers)
}

// Peer returns what this node last heard from node id.
func (c *Cluster) Peer(id uint64) (Progress, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.peers[id]
	return p, ok
}

// LeaderSince is when this node became Raft leader (zero when it is not).
func (c *Cluster) LeaderSince() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaderSince
}

func (c *Cluster) setLeader(leader bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if leader {
		c.leaderSince = time.Now()
	} else {
		c.leaderSince = time.Time{}
	}
}

// watchPauses ticks often, with nothing else to do, so a gap between
// ticks measures a pause of the whole process (SIGSTOP, a stalled VM, a
// long GC), not a slow peer.
func (c *Cluster) watchPauses(ctx context.Context) {
	c.lastTick.Store(time.Now().UnixNano())
	every := min(max(c.cfg.FailureTimeout/20, 5*time.Millisecond), 100*time.Millisecond)
	retry.Every(ctx, every, func(context.Context) { c.tick(time.Now()) })
}

// tick notes that the watchdog runs. After a gap of more than
// FailureTimeout/2 (this node was paused), every peer is given a fresh
// FailureTimeout: their silence was ours.
func (c *Cluster) tick(now time.Time) {
	last := time.Unix(0, c.lastTick.Swap(now.UnixNano()))
	if now.Sub(last) <= c.cfg.FailureTimeout/2 {
		return
	}
	c.Logger.Warn("this node was paused or starved; judging no peer dead for a failure timeout", "gap", now.Sub(last).String())
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, p := range c.peers {
		p.Seen = now
		c.peers[id] = p
	}
	if !c.leaderSince.IsZero() {
		c.leaderSince = now
	}
}

// stalled reports that the watchdog has not run lately.
func (c *Cluster) stalled() bool {
	return time.Since(time.Unix(0, c.lastTick.Load())) > c.cfg.FailureTimeout/2
}

// Alive reports whether node id is considered up: this node itself, or a
// node heard from within FailureTimeout. A node never heard from counts as
// alive until this node has led for FailureTimeout (no verdict without
// evidence).
func (c *Cluster) Alive(id uint64) bool {
	if id == c.cfg.Self.ID || c.stalled() {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.peers[id]; ok {
		return time.Since(p.Seen) <= c.cfg.FailureTimeout
	}
	return c.leaderSince.IsZero() || time.Since(c.leaderSince) <= c.cfg.FailureTimeout
}

// AliveStrict is Alive without the benefit of the doubt for nodes never
// heard from (used for visibility and repairs, not for failover).
func (c *Cluster) AliveStrict(id uint64) bool {
	if id == c.cfg.Self.ID {
		return true
	}
	p, ok := c.Peer(id)
	return ok && time.Since(p.Seen) <= c.cfg.FailureTimeout
}

// DiskFull reports whether node id said in its last heartbeat (or, for
// this node, says now) that it refuses appends on a full disk.
func (c *Cluster) DiskFull(id uint64) bool {
	if id == c.cfg.Self.ID {
		return c.SelfDiskFull != nil && c.SelfDiskFull()
	}
	p, ok := c.Peer(id)
	return ok && p.DiskFull
}

// Heard reports whether node id has heartbeated this node since it
// started.
func (c *Cluster) Heard(id uint64) bool {
	_, ok := c.Peer(id)
	return ok
}

// LiveVoters lists the voters judged alive.
func (c *Cluster) LiveVoters() ([]uint64, error) {
	m, err := c.Cons.Membership()
	if err != nil {
		return nil, err
	}
	var live []uint64
	for _, id := range m.Voters {
		if c.Alive(id) {
			live = append(live, id)
		}
	}
	return live, nil
}

// ConfirmContact proves that this node is in contact with the Raft leader
// now and has applied everything committed before it asked, and returns
// when it asked. A segment leader uses its leases for FailureTimeout/2
// after that time only: the Raft leader declares a node dead (and moves
// its segments) only after FailureTimeout without a heartbeat, and the
// confirmation delivers one. Because the time is taken before the request
// is sent, a node that was paused (SIGSTOP, a stalled VM) while the
// answer was on its way finds its confirmation already stale, and a
// failover committed while it was paused is applied before it could act.
// On the Raft leader, the proof is a round of Raft heartbeats
// (VerifyLeader).
func (c *Cluster) ConfirmContact(ctx context.Context) (time.Time, uint64, error) {
	start := time.Now()
	r := c.Cons.Raft()
	if r.State() == raft.Leader {
		if err := r.VerifyLeader().Error(); err != nil {
			return time.Time{}, 0, fmt.Errorf("confirm raft leadership: %w", err)
		}
		return start, r.CommitIndex(), nil
	}
	id, addr := c.Cons.Leader()
	if id == 0 {
		return time.Time{}, 0, wire.ErrNoRaftLeader
	}
	l := c.clientAt(addr)
	if err := l.Heartbeat(ctx, c.contactBeat(ctx)); err != nil {
		return time.Time{}, 0, fmt.Errorf("confirm contact with raft leader %d: %w", id, err)
	}
	idx, err := l.ReadIndex(ctx)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("confirm contact with raft leader %d: %w", id, err)
	}
	if err := c.awaitApplied(ctx, idx); err != nil {
		return time.Time{}, 0, err
	}
	return start, idx, nil
}

// awaitApplied waits until this node has applied index idx.
func (c *Cluster) awaitApplied(ctx context.Context, idx uint64) error {
	r := c.Cons.Raft()
	for r.AppliedIndex() < idx {
		// No-op commands do not signal Changed, so poll as well.
		t := time.NewTimer(2 * time.Millisecond)
		select {
		case <-c.FSM.Changed():
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
	return nil
}

// Addr returns the internal RPC address of a node.
func (c *Cluster) Addr(id uint64) (string, error) {
	if nd, ok := c.FSM.Node(id); ok && nd.RPCAddr != "" {
		return nd.RPCAddr, nil
	}
	// Before its upsert-node command commits, a member is still reachable
	// at its Raft address (the RPC shares the port).
	if m, err := c.Cons.Membership(); err == nil {
		if a, ok := m.Addrs[id]; ok {
			return a, nil
		}
	}
	return "", fmt.Errorf("node %d: %w", id, wire.ErrNoAddress)
}

// Client returns the RPC stub of node id (failing every call when its
// address is unknown).
func (c *Cluster) Client(id uint64) wire.Client {
	addr, err := c.Addr(id)
	return wire.Client{Caller: c.Caller, Addr: addr, Timeout: RPCTimeout, Err: err}
}

func (c *Cluster) clientAt(addr string) wire.Client {
	return wire.Client{Caller: c.Caller, Addr: addr, Timeout: RPCTimeout}
}

// Run joins (when asked to), registers this node's addresses, keeps
// heartbeating the other members and watches Raft; on the Raft leader it
// promotes caught-up learners and re-addresses moved members.
func (c *Cluster) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.observeRaft(ctx)
	}()
	go func() {
		defer wg.Done()
		c.watchPauses(ctx)
	}()
	defer wg.Wait()
	if len(c.cfg.Join) > 0 && !c.Cons.HasExistingState() {
		c.join(ctx)
	}
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	for {
		c.maybeRegister(ctx)
		c.Beat(ctx)
		if c.Cons.IsLeader() {
			c.promoteCaughtUp(ctx)
			c.fixAddresses(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// join asks the configured members to add this node, until one accepts.
func (c *Cluster) join(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		for _, addr := range c.cfg.Join {
			if addr == c.cfg.Self.RaftAddr {
				continue
			}
			if c.Cons.Raft().LastIndex() > 0 {
				// A join whose answer was lost went through: the leader
				// is sending us its log. Asking again would look like a
				// member that lost its state.
				c.Logger.Info("joined cluster")
				return
			}
			err := c.clientAt(addr).Join(ctx, c.cfg.Self.ID, c.cfg.Self.RaftAddr)
			c.Metrics.ObserveForward("join", err)
			if err == nil {
				c.Logger.Info("joined cluster", "via", addr)
				return
			}
			if attempt%10 == 0 {
				c.Logger.Warn("join attempt failed; retrying", "via", addr, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(joinRetryInterval):
		}
	}
}

// maybeRegister records this node's addresses in the metadata when they
// are missing or stale.
func (c *Cluster) maybeRegister(ctx context.Context) {
	self := c.cfg.Self
	if cur, ok := c.FSM.Node(self.ID); ok && cur == self {
		if !c.registered.Load() {
			// Restarted with the same addresses: still say so once, the
			// seed lists this line as normal start-up.
			c.registered.Store(true)
			c.Logger.Info("Registered node address", "raft_addr", self.RaftAddr, "rpc_addr", self.RPCAddr, "client_addr", self.ClientAddr, "unchanged", true)
		}
		return
	}
	if id, _ := c.Cons.Leader(); id == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := c.Propose(rctx, metadata.UpsertNode{Node: self})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		if ctx.Err() == nil {
			c.Logger.Warn("node address registration failed; will retry", "err", err)
		}
		return
	}
	c.registered.Store(true)
	c.Logger.Info("Registered node address", "raft_addr", self.RaftAddr, "rpc_addr", self.RPCAddr, "client_addr", self.ClientAddr)
}

// fixAddresses (on the Raft leader) re-addresses a member that restarted
// on a different Raft address, as reported in its heartbeats, keeping its
// suffrage.
func (c *Cluster) fixAddresses(ctx context.Context) {
	m, err := c.Cons.Membership()
	if err != nil {
		return
	}
	for id, p := range c.Peers() {
		old, ok := m.Addrs[id]
		if !ok || p.RaftAddr == "" || p.RaftAddr == old || time.Since(p.Seen) > c.cfg.FailureTimeout {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if slices.Contains(m.Voters, id) {
			err = c.Cons.Promote(cctx, id, p.RaftAddr)
		} else {
			err = c.Cons.AddNonvoter(cctx, id, p.RaftAddr)
		}
		cancel()
		if err != nil {
			c.Logger.Warn("re-addressing member failed", "peer", id, "addr", p.RaftAddr, "err", err)
			continue
		}
		c.Logger.Info("member re-addressed", "peer", id, "old_addr", old, "addr", p.RaftAddr)
	}
}

func (c *Cluster) promoteCaughtUp(ctx context.Context) {
	m, err := c.Cons.Membership()
	if err != nil || len(m.Learners) == 0 {
		return
	}
	commit := c.Cons.Raft().CommitIndex()
	for _, id := range m.Learners {
		p, ok := c.Peer(id)
		if !ok || time.Since(p.Seen) > c.cfg.FailureTimeout || p.Applied+promoteLagEntries < commit {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.Cons.Promote(pctx, id, m.Addrs[id])
		cancel()
		if err != nil {
			c.Logger.Warn("promotion to voter failed", "peer", id, "err", err)
			continue
		}
		c.Logger.Info("promoted node to voter", "peer", id, "applied", p.Applied, "commit", commit)
	}
}

// observeRaft counts elections and leader changes and tracks since when
// this node leads.
func (c *Cluster) observeRaft(ctx context.Context) {
	ch := make(chan raft.Observation, 64)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	r := c.Cons.Raft()
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
					c.Metrics.LeaderChanges.Inc()
				}
				c.Logger.Info("raft leader changed", "leader", string(d.LeaderID), "leader_addr", string(d.LeaderAddr))
			case raft.RaftState:
				if d == raft.Candidate {
					c.Metrics.Elections.Inc()
				}
				c.setLeader(d == raft.Leader)
			}
		}
	}
}

// LastSeen is when node id last heartbeated this node.
func (c *Cluster) LastSeen(id uint64) (time.Time, bool) {
	p, ok := c.Peer(id)
	return p.Seen, ok
}

// PeerApplied is the applied index node id last reported.
func (c *Cluster) PeerApplied(id uint64) uint64 {
	p, _ := c.Peer(id)
	return p.Applied
}
