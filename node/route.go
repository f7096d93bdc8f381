package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/rpc"
)

// Bounds of client request routing.
const (
	requestTimeout    = 15 * time.Second // one client command, retries included
	rpcTimeout        = 5 * time.Second  // one internal RPC
	maxRouteAttempts  = 100              // retries of one command
	retryBackoffStart = 5 * time.Millisecond
	retryBackoffMax   = 200 * time.Millisecond
)

func isNotRaftLeader(err error) bool {
	return errors.Is(err, consensus.ErrNotLeader) || errors.Is(err, errRemoteNotRaftLeader) || errors.Is(err, ErrNoRaftLeader)
}

// isTransient reports errors after which a retry may succeed: the target
// lost the lease or the segment is being rolled over, or the target node is
// unreachable right now.
func isTransient(err error) bool {
	if isNotLeader(err) || errors.Is(err, ErrFenced) || isNotRaftLeader(err) || errors.Is(err, errNoAddress) {
		return true
	}
	if errors.Is(err, rpc.ErrConnLost) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

var errNoAddress = errors.New("no address known for node")

// backoff waits for the next metadata change or d, whichever comes first.
func (n *Node) backoff(ctx context.Context, changed <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-changed:
		return nil
	case <-t.C:
		return nil
	case <-n.stopping:
		return ErrShuttingDown
	case <-ctx.Done():
		return ctx.Err()
	}
}

func nextBackoff(d time.Duration) time.Duration {
	d *= 2
	if d > retryBackoffMax {
		return retryBackoffMax
	}
	return d
}

// nodeAddr returns the internal RPC address of a node.
func (n *Node) nodeAddr(id uint64) (string, error) {
	if nd, ok := n.fsm.Node(id); ok && nd.RPCAddr != "" {
		return nd.RPCAddr, nil
	}
	// Before its upsert-node command commits, a member is still reachable
	// at its Raft address (the RPC shares the port).
	if m, err := n.cons.Membership(); err == nil {
		if a, ok := m.Addrs[id]; ok {
			return a, nil
		}
	}
	return "", fmt.Errorf("node %d: %w", id, errNoAddress)
}

// call sends one RPC to node id and maps remote errors to local kinds.
func (n *Node) call(ctx context.Context, id uint64, method byte, payload []byte) ([]byte, error) {
	addr, err := n.nodeAddr(id)
	if err != nil {
		return nil, err
	}
	return n.callAddr(ctx, addr, method, payload)
}

func (n *Node) callAddr(ctx context.Context, addr string, method byte, payload []byte) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := n.pool.Call(cctx, addr, method, payload)
	if err != nil {
		return nil, fromRPC(err)
	}
	return resp, nil
}

// onRaftLeader runs local on this node when it is the Raft leader, or sends
// the request to the leader; it waits (bounded) while there is none.
func (n *Node) onRaftLeader(ctx context.Context, kind string, method byte, payload []byte, local func(context.Context) ([]byte, error)) ([]byte, error) {
	d := retryBackoffStart
	var lastErr error = ErrNoRaftLeader
	for range maxRouteAttempts {
		id, addr := n.cons.Leader()
		var (
			resp []byte
			err  error
		)
		switch {
		case id == 0:
			err = ErrNoRaftLeader
		case id == n.id:
			resp, err = local(ctx)
		default:
			resp, err = n.callAddr(ctx, addr, method, payload)
			n.m.ObserveForward(kind, err)
		}
		if err == nil {
			return resp, nil
		}
		if !isNotRaftLeader(err) && !isTransient(err) {
			return nil, err
		}
		lastErr = err
		if berr := n.backoff(ctx, nil, d); berr != nil {
			return nil, berr
		}
		d = nextBackoff(d)
	}
	return nil, lastErr
}

// propose submits a metadata command through the Raft leader.
func (n *Node) propose(ctx context.Context, cmd metadata.Command) (metadata.Result, error) {
	b, err := metadata.Encode(cmd)
	if err != nil {
		return metadata.Result{}, err
	}
	resp, err := n.onRaftLeader(ctx, "proposal", methodPropose, b, func(ctx context.Context) ([]byte, error) {
		return n.proposeLocal(ctx, b)
	})
	if err != nil {
		return metadata.Result{}, err
	}
	return decodeResult(resp)
}

// proposeLocal proposes on this node (which must be the Raft leader) and
// encodes the result for the wire.
func (n *Node) proposeLocal(ctx context.Context, b []byte) ([]byte, error) {
	res, err := n.cons.ProposeRaw(ctx, b)
	if err != nil {
		if !isNotRaftLeader(err) {
			n.logger.Error("Raft consensus failed", "err", err)
		}
		return nil, err
	}
	return encodeResult(res), nil
}

func encodeResult(r metadata.Result) []byte {
	var e enc
	e.b = append(e.b, byte(r.Status))
	if r.Err != nil {
		e.str(r.Err.Error())
	}
	return e.b
}

func decodeResult(b []byte) (metadata.Result, error) {
	if len(b) == 0 {
		return metadata.Result{}, errShortPayload
	}
	r := metadata.Result{Status: metadata.Status(b[0])}
	if len(b) > 1 {
		d := dec{b: b[1:]}
		msg := d.str()
		if err := d.done(); err != nil {
			return metadata.Result{}, err
		}
		r.Err = fmt.Errorf("%s: %w", msg, metadata.ErrInvalidCommand)
	}
	return r, nil
}

// ensureTopic creates topic unless it exists and waits until this node has
// applied it (so the caller can route to it).
func (n *Node) ensureTopic(ctx context.Context, topic string) error {
	if err := n.createTopic(ctx, topic); err != nil {
		return err
	}
	return n.waitFor(ctx, func() bool { _, ok := n.fsm.Route(topic); return ok })
}

// createTopic creates topic unless it exists; it returns once the creation
// is committed (not necessarily applied on this node). The Raft leader
// picks the first segment's leader round-robin over the voters, spreading
// topics.
func (n *Node) createTopic(ctx context.Context, topic string) error {
	return n.createTopicWith(ctx, topic, 0, -1)
}

// createTopicWith creates topic with a replication factor and ack quorum
// (rf 0 and ack -1 take the node's configured defaults).
func (n *Node) createTopicWith(ctx context.Context, topic string, rf, ack int) error {
	if _, ok := n.fsm.Route(topic); ok {
		return nil
	}
	var e enc
	e.str(topic)
	if rf != 0 || ack != -1 {
		// The settings travel as an optional suffix after the topic; a
		// request without it takes the Raft leader's defaults.
		e.u32(uint32(rf))
		e.u32(uint32(int32(ack)))
	}
	_, err := n.onRaftLeader(ctx, "proposal", methodCreateTopic, e.b, func(ctx context.Context) ([]byte, error) {
		return nil, n.createTopicLocalWith(ctx, topic, rf, ack)
	})
	return err
}

func (n *Node) createTopicLocal(ctx context.Context, topic string) error {
	return n.createTopicLocalWith(ctx, topic, 0, -1)
}

func (n *Node) createTopicLocalWith(ctx context.Context, topic string, rf, ack int) error {
	if _, ok := n.fsm.Route(topic); ok {
		return nil
	}
	m, err := n.cons.Membership()
	if err != nil {
		return err
	}
	peers := n.peers.snapshot()
	var live []uint64
	for _, id := range m.Voters {
		if n.alive(id, peers) {
			live = append(live, id)
		}
	}
	leader := n.id
	if len(live) > 0 {
		leader = live[n.fsm.TopicCount()%len(live)]
	}
	if rf <= 0 {
		rf = n.cfg.ReplicationFactor
	}
	if ack < 0 {
		ack = n.cfg.AckQuorum
	}
	cmd := metadata.CreateTopic{Topic: topic, Leader: leader, ReplicationFactor: rf, AckQuorum: ack}
	if rf > 1 {
		cmd.Replicas = chooseReplicas(leader, live, rf)
	}
	res, err := n.cons.Propose(ctx, cmd)
	if err != nil {
		if !isNotRaftLeader(err) {
			n.logger.Error("Raft consensus failed", "op", "create_topic", "topic", topic, "err", err)
		}
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	n.logger.Info("topic created", "topic", topic, "leader", leader)
	return nil
}

// waitFor waits until cond holds, re-checking at every metadata change.
func (n *Node) waitFor(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	for {
		changed := n.fsm.Changed()
		if cond() {
			return nil
		}
		select {
		case <-changed:
		case <-n.stopping:
			return ErrShuttingDown
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// put appends entries to topic as one batch, routing to the segment
// leader and retrying on lease changes.
func (n *Node) put(ctx context.Context, topic string, entries [][]byte) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	d := retryBackoffStart
	var lastErr error
	for range maxRouteAttempts {
		changed := n.fsm.Changed()
		r, ok := n.fsm.Route(topic)
		if !ok {
			if !n.cfg.AutoCreateTopics && !n.knownTopic(ctx, topic) {
				return fmt.Errorf("%w %s", ErrUnknownTopic, topic)
			}
			if err := n.ensureTopic(ctx, topic); err != nil {
				return err
			}
			continue
		}
		var err error
		if r.Leader == n.id {
			err = n.appendLocal(ctx, topic, entries)
		} else {
			err = n.forwardAppend(ctx, r.Leader, topic, entries)
		}
		if err == nil {
			return nil
		}
		if !isTransient(err) || (r.Leader != n.id && appendOutcomeUnknown(err)) {
			return err
		}
		lastErr = err
		if berr := n.backoff(ctx, changed, d); berr != nil {
			return fmt.Errorf("%w (last: %v)", berr, lastErr)
		}
		d = nextBackoff(d)
	}
	return lastErr
}

// forwardAppendAsync sends one append RPC to the segment leader; cb gets
// the (typed) result, possibly on the RPC reader goroutine.
func (n *Node) forwardAppendAsync(leader uint64, topic string, entries [][]byte, cb func(error)) {
	addr, err := n.nodeAddr(leader)
	if err != nil {
		cb(err)
		return
	}
	var e enc
	size := 8 + len(topic)
	for _, p := range entries {
		size += 4 + len(p)
	}
	e.b = make([]byte, 0, size)
	e.str(topic)
	e.list(entries)
	// The pool bounds a dial itself; the call has its own timeout.
	n.pool.Go(context.Background(), addr, methodAppend, e.b, rpcTimeout, func(_ []byte, err error) {
		if err != nil {
			err = fromRPC(err)
		}
		n.m.ObserveForward("append", err)
		cb(err)
	})
}

// catchUp waits until this node has applied everything the Raft leader had
// committed when asked (a read index), so a topic just created through
// another node is visible here. The leader itself is always caught up.
func (n *Node) catchUp(ctx context.Context) error {
	resp, err := n.onRaftLeader(ctx, "read", methodReadIndex, nil, func(context.Context) ([]byte, error) { return nil, nil })
	if err != nil || resp == nil {
		return err
	}
	d := dec{b: resp}
	idx := d.u64()
	if err := d.done(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	r := n.cons.Raft()
	for r.AppliedIndex() < idx {
		// No-op commands do not signal Changed, so poll as well.
		t := time.NewTimer(2 * time.Millisecond)
		select {
		case <-n.fsm.Changed():
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
	return nil
}

// knownTopic reports whether topic exists, catching up with the Raft
// leader first when this node does not know it yet.
func (n *Node) knownTopic(ctx context.Context, topic string) bool {
	if _, ok := n.fsm.Route(topic); ok {
		return true
	}
	if err := n.catchUp(ctx); err != nil {
		return false
	}
	// raft's applied index counts entries handed to the FSM goroutine, not
	// yet necessarily applied: give it a moment to consume them.
	wctx, cancel := context.WithTimeout(ctx, fsmDrainWait)
	defer cancel()
	return n.waitFor(wctx, func() bool { _, ok := n.fsm.Route(topic); return ok }) == nil
}

// fsmDrainWait bounds the wait for the FSM goroutine after catchUp.
const fsmDrainWait = 250 * time.Millisecond
