package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/walrus-go/walrus/node/metadata"
)

// Membership timing.
const (
	heartbeatInterval = 250 * time.Millisecond
	joinRetryInterval = 500 * time.Millisecond
	// promoteLagEntries: a non-voter is promoted once its applied index is
	// within this many entries of the leader's commit index.
	promoteLagEntries = 64
)

// peerProgress is what this node knows of another node from its
// heartbeats (every node heartbeats every other member, so a newly elected
// Raft leader already knows everyone's recent state).
type peerProgress struct {
	LastIndex uint64
	Applied   uint64
	Seen      time.Time
	// Open maps "topic/segment" of the open segments the peer leads to
	// their entry count at the time of the heartbeat.
	Open map[segKey]uint64
	// RaftAddr is the address the peer advertises now.
	RaftAddr string
}

type segKey struct {
	topic string
	seg   uint64
}

type peerTable struct {
	mu sync.Mutex
	m  map[uint64]peerProgress
	// leaderSince is when this node last became Raft leader (zero when
	// it is not the leader); liveness verdicts wait FailureTimeout after it.
	leaderSince time.Time
}

func (t *peerTable) init() { t.m = map[uint64]peerProgress{} }

func (t *peerTable) record(id uint64, p peerProgress) {
	p.Seen = time.Now()
	t.mu.Lock()
	t.m[id] = p
	t.mu.Unlock()
}

func (t *peerTable) snapshot() map[uint64]peerProgress {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[uint64]peerProgress, len(t.m))
	for k, v := range t.m {
		out[k] = v
	}
	return out
}

func (t *peerTable) setLeader(leader bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if leader {
		t.leaderSince = time.Now()
	} else {
		t.leaderSince = time.Time{}
	}
}

// alive reports whether node id is considered up: this node itself, or a
// node heard from within FailureTimeout. A node never heard from counts as
// alive until this node has led for FailureTimeout (no verdict without
// evidence).
func (n *Node) alive(id uint64, peers map[uint64]peerProgress) bool {
	if id == n.id {
		return true
	}
	if p, ok := peers[id]; ok {
		return time.Since(p.Seen) <= n.cfg.FailureTimeout
	}
	n.peers.mu.Lock()
	since := n.peers.leaderSince
	n.peers.mu.Unlock()
	return since.IsZero() || time.Since(since) <= n.cfg.FailureTimeout
}

// leaseFresh reports whether this node may use its segment leases: it
// must be in recent contact with the Raft leader (or be it). A node cut
// off from the leader stops appending after FailureTimeout/2, before the
// leader declares it dead (after FailureTimeout) and moves its segments.
func (n *Node) leaseFresh() bool {
	if n.draining.Load() {
		return false
	}
	r := n.cons.Raft()
	if r.State() == raft.Leader {
		return true
	}
	last := r.LastContact()
	return !last.IsZero() && time.Since(last) < n.cfg.FailureTimeout/2
}

// handleJoin adds a node as a non-voter (on the Raft leader; followers
// forward to it).
func (n *Node) handleJoin(ctx context.Context, id uint64, addr string) error {
	if id == 0 || addr == "" {
		return errors.New("join: need a node id and an address")
	}
	var e enc
	e.u64(id)
	e.str(addr)
	_, err := n.onRaftLeader(ctx, "join", methodJoin, e.b, func(ctx context.Context) ([]byte, error) {
		if err := n.cons.AddNonvoter(ctx, id, addr); err != nil {
			return nil, err
		}
		n.logger.Info("node joined as non-voter", "joiner", id, "addr", addr)
		return nil, nil
	})
	return err
}

// join asks the configured members to add this node, until one accepts.
func (n *Node) join(ctx context.Context) {
	var e enc
	e.u64(n.id)
	e.str(n.self.RaftAddr)
	for attempt := 0; ; attempt++ {
		for _, addr := range n.cfg.Join {
			if addr == n.self.RaftAddr {
				continue
			}
			_, err := n.callAddr(ctx, addr, methodJoin, e.b)
			n.m.ObserveForward("join", err)
			if err == nil {
				n.logger.Info("joined cluster", "via", addr)
				return
			}
			if attempt%10 == 0 {
				n.logger.Warn("join attempt failed; retrying", "via", addr, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(joinRetryInterval):
		}
	}
}

// clusterLoop joins (when asked to), registers this node's addresses and
// keeps heartbeating the other members; on the Raft leader it promotes
// caught-up non-voters.
func (n *Node) clusterLoop(ctx context.Context) {
	if len(n.cfg.Join) > 0 && !n.cons.HasExistingState() {
		n.join(ctx)
	}
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	for {
		n.maybeRegister(ctx)
		n.heartbeat(ctx)
		if n.cons.IsLeader() {
			n.promoteCaughtUp(ctx)
			n.fixAddresses(ctx)
			if err := n.failoverDead(ctx); err != nil && ctx.Err() == nil {
				n.logger.Error("monitor tick failed", "op", "failover", "err", err)
				n.m.MonitorTickFailures.Inc()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maybeRegister records this node's addresses in the metadata when they
// are missing or stale.
func (n *Node) maybeRegister(ctx context.Context) {
	if cur, ok := n.fsm.Node(n.id); ok && cur == n.self {
		if !n.registered.Load() {
			// Restarted with the same addresses: still say so once, the
			// seed lists this line as normal start-up.
			n.registered.Store(true)
			n.logger.Info("Registered node address", "raft_addr", n.self.RaftAddr, "rpc_addr", n.self.RPCAddr, "client_addr", n.self.ClientAddr, "unchanged", true)
		}
		return
	}
	if id, _ := n.cons.Leader(); id == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := n.propose(rctx, upsertSelf(n))
	if err == nil {
		err = res.Err
	}
	if err != nil {
		if ctx.Err() == nil {
			n.logger.Warn("node address registration failed; will retry", "err", err)
		}
		return
	}
	n.registered.Store(true)
	n.logger.Info("Registered node address", "raft_addr", n.self.RaftAddr, "rpc_addr", n.self.RPCAddr, "client_addr", n.self.ClientAddr)
}

// fixAddresses (on the Raft leader) re-addresses a member that restarted
// on a different Raft address, as reported in its heartbeats, keeping its
// suffrage.
func (n *Node) fixAddresses(ctx context.Context) {
	m, err := n.cons.Membership()
	if err != nil {
		return
	}
	for id, p := range n.peers.snapshot() {
		old, ok := m.Addrs[id]
		if !ok || p.RaftAddr == "" || p.RaftAddr == old || time.Since(p.Seen) > n.cfg.FailureTimeout {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if slices.Contains(m.Voters, id) {
			err = n.cons.Promote(cctx, id, p.RaftAddr)
		} else {
			err = n.cons.AddNonvoter(cctx, id, p.RaftAddr)
		}
		cancel()
		if err != nil {
			n.logger.Warn("re-addressing member failed", "peer", id, "addr", p.RaftAddr, "err", err)
			continue
		}
		n.logger.Info("member re-addressed", "peer", id, "old_addr", old, "addr", p.RaftAddr)
	}
}

// heartbeat reports this node's Raft progress and the entry counts of the
// open segments it leads to every other member.
func (n *Node) heartbeat(ctx context.Context) {
	m, err := n.cons.Membership()
	if err != nil {
		return
	}
	r := n.cons.Raft()
	var e enc
	e.u64(n.id)
	e.u64(r.LastIndex())
	e.u64(r.AppliedIndex())
	n.leases.mu.RLock()
	led := make(map[string]uint64, len(n.leases.m))
	for t, s := range n.leases.m {
		led[t] = s
	}
	n.leases.mu.RUnlock()
	var open enc
	count := 0
	for topic, seg := range led {
		c, err := n.segmentCountOf(topic, seg)
		if err != nil {
			continue
		}
		open.str(topic)
		open.u64(seg)
		open.u64(c)
		count++
	}
	e.u32(uint32(count))
	e.b = append(e.b, open.b...)
	e.str(n.self.RaftAddr)
	hctx, cancel := context.WithTimeout(ctx, heartbeatInterval*4)
	defer cancel()
	var wg sync.WaitGroup
	for id, addr := range m.Addrs {
		if id == n.id {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = n.callAddr(hctx, addr, methodHeartbeat, e.b)
		}()
	}
	wg.Wait()
}

func decodeHeartbeat(payload []byte) (uint64, peerProgress, error) {
	d := dec{b: payload}
	id, last, applied := d.u64(), d.u64(), d.u64()
	k := d.u32()
	if d.err == nil && uint64(k)*20 > uint64(len(d.b)) {
		d.err = errShortPayload
	}
	p := peerProgress{LastIndex: last, Applied: applied, Open: make(map[segKey]uint64, k)}
	for range k {
		if d.err != nil {
			break
		}
		topic := d.str()
		seg, c := d.u64(), d.u64()
		p.Open[segKey{topic, seg}] = c
	}
	if d.err == nil && len(d.b) > 0 {
		p.RaftAddr = d.str()
	}
	return id, p, d.done()
}

func (n *Node) promoteCaughtUp(ctx context.Context) {
	m, err := n.cons.Membership()
	if err != nil || len(m.Learners) == 0 {
		return
	}
	commit := n.cons.Raft().CommitIndex()
	peers := n.peers.snapshot()
	for _, id := range m.Learners {
		p, ok := peers[id]
		if !ok || time.Since(p.Seen) > n.cfg.FailureTimeout || p.Applied+promoteLagEntries < commit {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := n.cons.Promote(pctx, id, m.Addrs[id])
		cancel()
		if err != nil {
			n.logger.Warn("promotion to voter failed", "peer", id, "err", err)
			continue
		}
		n.logger.Info("promoted node to voter", "peer", id, "applied", p.Applied, "commit", commit)
	}
}

// RemoveNode removes node id from the cluster: from the Raft configuration
// and from the address book. Any node may be asked; the Raft leader does
// it. Open segments led by the removed node stay with it until failover
// (segment replication) exists, so drain or roll its topics first.
func (n *Node) RemoveNode(ctx context.Context, id uint64) error {
	if id == 0 {
		return errors.New("remove node: id 0")
	}
	var e enc
	e.u64(id)
	_, err := n.onRaftLeader(ctx, "proposal", methodRemoveNode, e.b, func(ctx context.Context) ([]byte, error) {
		return nil, n.removeNodeLocal(ctx, id)
	})
	return err
}

func (n *Node) removeNodeLocal(ctx context.Context, id uint64) error {
	if !n.cons.IsLeader() {
		return fmt.Errorf("remove node: %w", errRemoteNotRaftLeader)
	}
	m, err := n.cons.Membership()
	if err != nil {
		return err
	}
	if _, ok := m.Addrs[id]; ok {
		if len(m.Voters) == 1 && m.Voters[0] == id {
			return fmt.Errorf("remove node %d: it is the only voter", id)
		}
		if err := n.cons.Remove(ctx, id); err != nil {
			return err
		}
	}
	if id == n.id {
		// The leader removed itself and stepped down; the new leader
		// cleans the address book when asked again.
		return nil
	}
	res, err := n.cons.Propose(ctx, metadata.RemoveNode{ID: id})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return err
	}
	n.logger.Info("node removed", "removed", id)
	return nil
}
