package node

import (
	"context"
	"fmt"
	"time"

	"github.com/walrus-go/walrus/node/rpc"
)

func newTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

// rpcHandler serves the internal RPC; appends take the asynchronous path
// (queued straight into the topic writer, answered from it).
type rpcHandler struct{ n *Node }

func (h rpcHandler) HandleRPC(ctx context.Context, method byte, payload []byte) ([]byte, error) {
	return h.n.handleRPC(ctx, method, payload)
}

func (h rpcHandler) HandleRPCAsync(ctx context.Context, method byte, payload []byte, reply func([]byte, error)) bool {
	if method == methodReplicaAppend {
		// Served on the connection's reader goroutine, so a leader's
		// pipelined batches are applied in the order they were sent.
		resp, err := h.n.handleReplicaAppendRPC(ctx, payload)
		if err != nil {
			reply(nil, replicaToRPC(err))
		} else {
			reply(resp, nil)
		}
		return true
	}
	if method != methodAppend {
		return false
	}
	d := dec{b: payload}
	topic := d.str()
	entries := d.list()
	if d.done() != nil || len(entries) == 0 {
		return false // the blocking path reports the error
	}
	return h.n.appendAsync(topic, entries, func(err error) {
		if err != nil {
			reply(nil, toRPC(err))
			return
		}
		reply(nil, nil)
	})
}

// handleRPC serves the internal RPC (see wire.go for the methods).
func (n *Node) handleRPC(ctx context.Context, method byte, payload []byte) ([]byte, error) {
	if method >= methodReplicaAppend {
		resp, err := n.dispatchReplicaRPC(ctx, method, payload)
		if err != nil {
			return nil, replicaToRPC(err)
		}
		return resp, nil
	}
	resp, err := n.dispatchRPC(ctx, method, payload)
	if err != nil {
		return nil, toRPC(err)
	}
	return resp, nil
}

func (n *Node) dispatchRPC(ctx context.Context, method byte, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	d := dec{b: payload}
	switch method {
	case methodAppend:
		topic := d.str()
		entries := d.list()
		if err := d.done(); err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			return nil, fmt.Errorf("append %s: empty batch", topic)
		}
		return nil, n.appendLocal(ctx, topic, entries)
	case methodGet:
		topic := d.str()
		limit := int(d.u32())
		if err := d.done(); err != nil {
			return nil, err
		}
		limit = min(max(limit, 1), maxGetBatch)
		entries, more, err := n.getLocal(ctx, topic, limit)
		if err != nil {
			return nil, err
		}
		var e enc
		e.list(entries)
		if more {
			e.b = append(e.b, 1)
		} else {
			e.b = append(e.b, 0)
		}
		return e.b, nil
	case methodRead:
		topic := d.str()
		seg, off := d.u64(), d.u64()
		limit := int(d.u32())
		if err := d.done(); err != nil {
			return nil, err
		}
		entries, err := n.readLocal(ctx, topic, seg, off, min(max(limit, 1), maxGetBatch))
		if err != nil {
			return nil, err
		}
		var e enc
		e.list(entries)
		return e.b, nil
	case methodReadIndex:
		if !n.cons.IsLeader() {
			return nil, fmt.Errorf("read index: %w", errRemoteNotRaftLeader)
		}
		var e enc
		e.u64(n.cons.Raft().CommitIndex())
		return e.b, nil
	case methodRollHint:
		topic := d.str()
		if err := d.done(); err != nil {
			return nil, err
		}
		n.hintRollover(topic)
		return nil, nil
	case methodRemoveNode:
		id := d.u64()
		if err := d.done(); err != nil {
			return nil, err
		}
		return nil, n.removeNodeLocal(ctx, id)
	case methodPropose:
		return n.proposeLocal(ctx, payload)
	case methodCreateTopic:
		topic := d.str()
		rf, ack := 0, -1
		if len(d.b) >= 8 {
			rf, ack = int(d.u32()), int(int32(d.u32()))
		}
		if err := d.done(); err != nil {
			return nil, err
		}
		return nil, n.createTopicLocalWith(ctx, topic, rf, ack)
	case methodJoin:
		id := d.u64()
		addr := d.str()
		if err := d.done(); err != nil {
			return nil, err
		}
		return nil, n.handleJoin(ctx, id, addr)
	case methodHeartbeat:
		id, p, err := decodeHeartbeat(payload)
		if err != nil {
			return nil, err
		}
		n.peers.record(id, p)
		return nil, nil
	case methodFence:
		topic := d.str()
		seg, minEntries := d.u64(), d.u64()
		if err := d.done(); err != nil {
			return nil, err
		}
		count, fenced, err := n.fenceLocal(ctx, topic, seg, minEntries)
		if err != nil {
			return nil, err
		}
		var e enc
		if fenced {
			e.b = append(e.b, 1)
		} else {
			e.b = append(e.b, 0)
		}
		e.u64(count)
		return e.b, nil
	case methodUnfence:
		topic := d.str()
		seg := d.u64()
		if err := d.done(); err != nil {
			return nil, err
		}
		return nil, n.unfenceLocal(ctx, topic, seg)
	case methodStat:
		topic := d.str()
		seg := d.u64()
		if err := d.done(); err != nil {
			return nil, err
		}
		count, err := n.segmentCountOf(topic, seg)
		if err != nil {
			return nil, err
		}
		var e enc
		e.u64(count)
		return e.b, nil
	}
	return nil, &rpc.Error{Message: fmt.Sprintf("unknown rpc method %d", method)}
}
