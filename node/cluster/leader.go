package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/retry"
	"github.com/walrus-go/walrus/node/wire"
)

// onLeader runs local when this node is the Raft leader, or remote against
// the leader's stub; it waits (bounded) while there is none and retries
// while the leadership moves.
func (c *Cluster) onLeader(ctx context.Context, kind string, local func(context.Context) error, remote func(context.Context, wire.Client) error) error {
	var (
		b       retry.Backoff
		lastErr error = wire.ErrNoRaftLeader
	)
	for range retry.MaxAttempts {
		id, addr := c.Cons.Leader()
		var err error
		switch {
		case id == 0:
			err = wire.ErrNoRaftLeader
		case id == c.cfg.Self.ID:
			err = local(ctx)
		default:
			err = remote(ctx, c.clientAt(addr))
			c.Metrics.ObserveForward(kind, err)
		}
		if err == nil {
			return nil
		}
		if !retry.Transient(err) {
			return err
		}
		lastErr = err
		if berr := b.Wait(ctx, nil, c.Stopping); berr != nil {
			return berr
		}
	}
	return lastErr
}

// Propose submits a metadata command through the Raft leader.
func (c *Cluster) Propose(ctx context.Context, cmd metadata.Command) (metadata.Result, error) {
	b, err := metadata.Encode(cmd)
	if err != nil {
		return metadata.Result{}, err
	}
	var res metadata.Result
	err = c.onLeader(ctx, "proposal",
		func(ctx context.Context) (err error) { res, err = c.ProposeLocal(ctx, b); return err },
		func(ctx context.Context, l wire.Client) (err error) { res, err = l.Propose(ctx, b); return err })
	return res, err
}

// ProposeLocal proposes an encoded command on this node, which must be the
// Raft leader (the receiving side of wire.MethodPropose).
func (c *Cluster) ProposeLocal(ctx context.Context, cmd []byte) (metadata.Result, error) {
	res, err := c.Cons.ProposeRaw(ctx, cmd)
	if err != nil && !wire.IsNotRaftLeader(err) {
		c.Logger.Error("Raft consensus failed", "err", err)
	}
	return res, err
}

// ProposeDirect proposes through the current Raft leader without the
// request-path retry loop (which stops at shutdown); for the shutdown
// handoff.
func (c *Cluster) ProposeDirect(ctx context.Context, cmd metadata.Command) error {
	b, err := metadata.Encode(cmd)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		id, addr := c.Cons.Leader()
		var res metadata.Result
		switch {
		case id == 0:
			err = wire.ErrNoRaftLeader
		case id == c.cfg.Self.ID:
			res, err = c.ProposeLocal(ctx, b)
		default:
			res, err = c.clientAt(addr).Propose(ctx, b)
		}
		if err == nil {
			return res.Err
		}
		if !retry.Transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return ctx.Err()
}

// CreateTopic creates a topic on the Raft leader (rf 0 and ack -1 take
// its defaults).
func (c *Cluster) CreateTopic(ctx context.Context, topic string, rf, ack int) error {
	return c.onLeader(ctx, "proposal",
		func(ctx context.Context) error { return c.Local.CreateTopic(ctx, topic, rf, ack) },
		func(ctx context.Context, l wire.Client) error { return l.CreateTopic(ctx, topic, rf, ack) })
}

// Get hands out entries of a topic's shared cursor, which lives on the
// Raft leader. Every attempt carries the same request id, so the leader
// answers a retry with what it handed out the first time.
func (c *Cluster) Get(ctx context.Context, req *wire.GetRequest) (entries [][]byte, more bool, err error) {
	err = c.onLeader(ctx, "read",
		func(ctx context.Context) (err error) { entries, more, err = c.Local.Get(ctx, req); return err },
		func(ctx context.Context, l wire.Client) (err error) { entries, more, err = l.Get(ctx, req); return err })
	return entries, more, err
}

// Group runs a consumer-group command on the group coordinator, the Raft
// leader. A retried READ may lease entries twice; the first lease just
// runs out (at-least-once).
func (c *Cluster) Group(ctx context.Context, req *wire.GroupRequest) (rep *wire.GroupReply, err error) {
	err = c.onLeader(ctx, "read",
		func(ctx context.Context) (err error) { rep, err = c.Local.Group(ctx, req); return err },
		func(ctx context.Context, l wire.Client) (err error) { rep, err = l.Group(ctx, req); return err })
	return rep, err
}

// StepDown tells the Raft leader that this node gives up leading a
// segment (it holds fewer entries than a replica, or a recovery fenced
// it), so the segment is recovered and the topic moves on.
func (c *Cluster) StepDown(ctx context.Context, topic string, seg uint64) error {
	return c.onLeader(ctx, "proposal",
		func(ctx context.Context) error { return c.Local.StepDown(ctx, topic, seg) },
		func(ctx context.Context, l wire.Client) error { return l.StepDown(ctx, topic, seg) })
}

// CommitCursors asks the Raft leader to commit the shared cursors now and
// waits for it (a node that is stopping lets them commit while it still
// counts towards the Raft quorum).
func (c *Cluster) CommitCursors(ctx context.Context) error {
	return c.onLeader(ctx, "proposal",
		func(ctx context.Context) error { return c.Local.CommitCursors(ctx) },
		func(ctx context.Context, l wire.Client) error { return l.CommitCursors(ctx) })
}

// SendRollHint passes a "segment full" hint to the Raft leader once (the
// periodic monitor tick is the fallback).
func (c *Cluster) SendRollHint(ctx context.Context, topic string) {
	id, addr := c.Cons.Leader()
	if id == 0 || id == c.cfg.Self.ID {
		return
	}
	_ = c.clientAt(addr).RollHint(ctx, topic)
}

// CatchUp waits until this node has applied everything the Raft leader had
// committed when asked (a read index), so a topic just created through
// another node is visible here. The leader itself is always caught up.
func (c *Cluster) CatchUp(ctx context.Context) error {
	var idx uint64
	err := c.onLeader(ctx, "read",
		func(context.Context) error { return nil },
		func(ctx context.Context, l wire.Client) (err error) { idx, err = l.ReadIndex(ctx); return err })
	if err != nil || idx == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, retry.RequestTimeout)
	defer cancel()
	return c.awaitApplied(ctx, idx)
}

// ReadIndex is the receiving side of wire.MethodReadIndex: the Raft
// leader's commit index.
func (c *Cluster) ReadIndex(context.Context) (uint64, error) {
	if !c.Cons.IsLeader() {
		return 0, fmt.Errorf("read index: %w", wire.ErrNotRaftLeader)
	}
	return c.Cons.Raft().CommitIndex(), nil
}

// Join adds a node as a non-voter through the Raft leader (the receiving
// side of wire.MethodJoin: a follower forwards it).
func (c *Cluster) Join(ctx context.Context, id uint64, addr string) error {
	if id == 0 || addr == "" {
		return errors.New("join: need a node id and an address")
	}
	return c.onLeader(ctx, "join",
		func(ctx context.Context) error {
			m, err := c.Cons.Membership()
			if err != nil {
				return err
			}
			if slices.Contains(m.Voters, id) {
				// Only a node without Raft state asks to join: this voter
				// lost its log (a wiped disk). Counting it in quorums
				// again would let one more fault lose committed
				// metadata, so it rejoins as a new member and votes
				// again only once it has caught up.
				c.Logger.Warn("a voter rejoined without its raft state: removing it and adding it back as a non-voter until it catches up", "joiner", id, "addr", addr)
				if len(m.Voters) == 1 {
					return fmt.Errorf("join: node %d is the only voter and lost its raft state; restore its data dir or bootstrap a new cluster", id)
				}
				if err := c.Cons.Remove(ctx, id); err != nil {
					return fmt.Errorf("join: remove node %d that lost its raft state: %w", id, err)
				}
			}
			if err := c.Cons.AddNonvoter(ctx, id, addr); err != nil {
				return err
			}
			c.Logger.Info("node joined as non-voter", "joiner", id, "addr", addr)
			return nil
		},
		func(ctx context.Context, l wire.Client) error { return l.Join(ctx, id, addr) })
}

// RemoveNode removes node id from the cluster: from the Raft configuration
// and from the address book. Any node may be asked; the Raft leader does
// it. Open segments led by the removed node stay with it until failover,
// so drain or roll its topics first.
func (c *Cluster) RemoveNode(ctx context.Context, id uint64) error {
	if id == 0 {
		return errors.New("remove node: id 0")
	}
	return c.onLeader(ctx, "proposal",
		func(ctx context.Context) error { return c.RemoveNodeLocal(ctx, id) },
		func(ctx context.Context, l wire.Client) error { return l.RemoveNode(ctx, id) })
}

// RemoveNodeLocal is the Raft leader's side of RemoveNode.
func (c *Cluster) RemoveNodeLocal(ctx context.Context, id uint64) error {
	if !c.Cons.IsLeader() {
		return fmt.Errorf("remove node: %w", wire.ErrNotRaftLeader)
	}
	m, err := c.Cons.Membership()
	if err != nil {
		return err
	}
	if _, ok := m.Addrs[id]; ok {
		if len(m.Voters) == 1 && m.Voters[0] == id {
			return fmt.Errorf("remove node %d: it is the only voter", id)
		}
		if err := c.Cons.Remove(ctx, id); err != nil {
			return err
		}
	}
	if id == c.cfg.Self.ID {
		// The leader removed itself and stepped down; the new leader
		// cleans the address book when asked again.
		return nil
	}
	res, err := c.Cons.Propose(ctx, metadata.RemoveNode{ID: id})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return err
	}
	c.Logger.Info("node removed", "removed", id)
	return nil
}

// TransferLeadership hands the Raft leadership to another voter before a
// clean shutdown, so the cluster does not wait an election timeout.
func (c *Cluster) TransferLeadership() {
	if !c.Cons.IsLeader() {
		return
	}
	m, err := c.Cons.Membership()
	if err != nil || len(m.Voters) < 2 {
		return
	}
	if err := c.Cons.Raft().LeadershipTransfer().Error(); err != nil {
		c.Logger.Warn("leadership transfer at shutdown failed", "err", err)
		return
	}
	c.Logger.Info("raft leadership transferred before shutdown")
}
