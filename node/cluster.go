package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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

// peerProgress is what the Raft leader knows of another node from its
// heartbeats.
type peerProgress struct {
	LastIndex uint64
	Applied   uint64
	Seen      time.Time
}

type peerTable struct {
	mu sync.Mutex
	m  map[uint64]peerProgress
}

func (t *peerTable) init() { t.m = map[uint64]peerProgress{} }

func (t *peerTable) record(id, last, applied uint64) {
	t.mu.Lock()
	t.m[id] = peerProgress{LastIndex: last, Applied: applied, Seen: time.Now()}
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
// keeps heartbeating the Raft leader; on the leader it promotes caught-up
// non-voters.
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
	n.logger.Info("Registered node address", "raft_addr", n.self.RaftAddr, "rpc_addr", n.self.RPCAddr, "client_addr", n.self.ClientAddr)
}

// heartbeat reports this node's Raft progress to the leader.
func (n *Node) heartbeat(ctx context.Context) {
	id, addr := n.cons.Leader()
	if id == 0 || id == n.id {
		return
	}
	r := n.cons.Raft()
	var e enc
	e.u64(n.id)
	e.u64(r.LastIndex())
	e.u64(r.AppliedIndex())
	hctx, cancel := context.WithTimeout(ctx, heartbeatInterval*4)
	defer cancel()
	_, _ = n.callAddr(hctx, addr, methodHeartbeat, e.b)
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
