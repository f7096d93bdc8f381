package wire

import (
	"context"
	"fmt"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/rpc"
)

// Handler is the receiving side of every method, typed. The node's
// composition root implements it by handing each call to the part that
// owns it; Client has the same methods for the sending side.
type Handler interface {
	Append(ctx context.Context, topic string, entries [][]byte) error
	// AppendAsync queues an append without blocking and answers cb later;
	// false means "queue full, take the blocking path".
	AppendAsync(topic string, entries [][]byte, cb func(error)) bool
	Get(ctx context.Context, req *GetRequest) (entries [][]byte, more bool, err error)
	Read(ctx context.Context, topic string, seg, off uint64, max int) ([][]byte, error)
	// RecoveryRead reads past the ack-quorum bound of an open segment (a
	// recovery copying a fenced segment's tail).
	RecoveryRead(ctx context.Context, topic string, seg, off uint64, max int) ([][]byte, error)
	Propose(ctx context.Context, cmd []byte) (metadata.Result, error)
	CreateTopic(ctx context.Context, topic string, rf, ack int) error
	Join(ctx context.Context, id uint64, addr string) error
	Heartbeat(ctx context.Context, hb *Heartbeat) error
	Fence(ctx context.Context, topic string, seg, min uint64) (count uint64, fenced bool, err error)
	Unfence(ctx context.Context, topic string, seg uint64) error
	ReadIndex(ctx context.Context) (uint64, error)
	RemoveNode(ctx context.Context, id uint64) error
	RollHint(ctx context.Context, topic string) error
	// StepDown: the segment's leader gives it up (it lost entries its
	// replicas hold, or a recovery fenced it); the Raft leader recovers it.
	StepDown(ctx context.Context, topic string, seg uint64) error
	// CommitCursors commits the shared cursors now (a node stopping).
	CommitCursors(ctx context.Context) error
	ReplicaAppend(ctx context.Context, topic string, seg, epoch, first uint64, entries [][]byte) (uint64, error)
	// ReplicaAppendAsync applies a streamed batch after the batches of the
	// same segment queued before it, without holding up the caller.
	ReplicaAppendAsync(topic string, seg, epoch, first uint64, entries [][]byte, cb func(uint64, error))
	ReplicaFence(ctx context.Context, topic string, seg, epoch uint64) (uint64, error)
	ReplicaPull(ctx context.Context, topic string, seg, count uint64, sources []uint64) (uint64, error)
	// Fetch reads stored entries of a segment held here with its readable
	// bound (never past what its ack quorum holds).
	Fetch(ctx context.Context, req *FetchRequest) (*FetchReply, error)
	// Group runs a consumer-group command on the coordinator.
	Group(ctx context.Context, req *GroupRequest) (*GroupReply, error)
	// Stat reports what this node's store holds of a segment.
	Stat(ctx context.Context, topic string, seg uint64) (entries, bytes uint64, err error)
}

// Interceptor sees every request before it is dispatched; a non-nil error
// is answered instead (fault injection in tests).
type Interceptor func(method byte, payload []byte) error

// Dispatch decodes one request, runs it on h and encodes the reply; errors
// come back mapped by ToRPC.
func Dispatch(ctx context.Context, h Handler, method byte, payload []byte) ([]byte, error) {
	resp, err := dispatch(ctx, h, method, payload)
	return resp, ToRPC(err)
}

// DispatchAsync serves the methods that must not wait on the connection's
// reader: appends go straight into the topic writer's queue, and replica
// appends into their segment's apply queue, taken in the order they arrive
// so a leader's pipelined batches land in the order they were sent. It
// reports whether it took the call.
func DispatchAsync(ctx context.Context, h Handler, method byte, payload []byte, reply func([]byte, error)) bool {
	switch method {
	case MethodReplicaAppend:
		var req ReplicaAppendRequest
		if req.Decode(payload) != nil {
			return false // the blocking path reports the error
		}
		h.ReplicaAppendAsync(req.Topic, req.Segment, req.Epoch, req.First, req.Entries, func(count uint64, err error) {
			if err != nil {
				reply(nil, ToRPC(err))
				return
			}
			reply((&CountReply{Count: count}).Append(nil), nil)
		})
		return true
	case MethodAppend:
		var req AppendRequest
		if req.Decode(payload) != nil || len(req.Entries) == 0 {
			return false // the blocking path reports the error
		}
		return h.AppendAsync(req.Topic, req.Entries, func(err error) { reply(nil, ToRPC(err)) })
	}
	return false
}

func dispatch(ctx context.Context, h Handler, method byte, payload []byte) ([]byte, error) {
	switch method {
	case MethodAppend:
		var req AppendRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		if len(req.Entries) == 0 {
			return nil, fmt.Errorf("append %s: empty batch", req.Topic)
		}
		return nil, h.Append(ctx, req.Topic, req.Entries)
	case MethodGet:
		var req GetRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		entries, more, err := h.Get(ctx, &req)
		if err != nil {
			return nil, err
		}
		return (&GetReply{Entries: entries, More: more}).Append(nil), nil
	case MethodRead:
		var req ReadRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		read := h.Read
		if req.Recovery {
			read = h.RecoveryRead
		}
		entries, err := read(ctx, req.Topic, req.Segment, req.Offset, int(req.Max))
		if err != nil {
			return nil, err
		}
		return (&EntriesReply{Entries: entries}).Append(nil), nil
	case MethodPropose:
		res, err := h.Propose(ctx, payload)
		if err != nil {
			return nil, err
		}
		return EncodeResult(res), nil
	case MethodCreateTopic:
		var req CreateTopicRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		return nil, h.CreateTopic(ctx, req.Topic, req.RF, req.Ack)
	case MethodJoin:
		var req JoinRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		return nil, h.Join(ctx, req.ID, req.Addr)
	case MethodHeartbeat:
		var hb Heartbeat
		if err := hb.Decode(payload); err != nil {
			return nil, err
		}
		return nil, h.Heartbeat(ctx, &hb)
	case MethodFence:
		var req FenceRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		count, fenced, err := h.Fence(ctx, req.Topic, req.Segment, req.Min)
		if err != nil {
			return nil, err
		}
		return (&FenceReply{Fenced: fenced, Count: count}).Append(nil), nil
	case MethodUnfence:
		var req SegmentRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		return nil, h.Unfence(ctx, req.Topic, req.Segment)
	case MethodReadIndex:
		return countReply(h.ReadIndex(ctx))
	case MethodRemoveNode:
		var req NodeRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		return nil, h.RemoveNode(ctx, req.ID)
	case MethodRollHint:
		var req TopicRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		return nil, h.RollHint(ctx, req.Topic)
	case MethodStepDown:
		var req SegmentRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		return nil, h.StepDown(ctx, req.Topic, req.Segment)
	case MethodCommitCursors:
		return nil, h.CommitCursors(ctx)
	case MethodFetch:
		var req FetchRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		r, err := h.Fetch(ctx, &req)
		if err != nil {
			return nil, err
		}
		return r.Append(nil), nil
	case MethodStat:
		var req SegmentRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		n, b, err := h.Stat(ctx, req.Topic, req.Segment)
		if err != nil {
			return nil, err
		}
		return (&StatReply{Entries: n, Bytes: b}).Append(nil), nil
	case MethodGroup:
		var req GroupRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		r, err := h.Group(ctx, &req)
		if err != nil {
			return nil, err
		}
		return r.Append(nil), nil
	case MethodReplicaAppend:
		var req ReplicaAppendRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		return countReply(h.ReplicaAppend(ctx, req.Topic, req.Segment, req.Epoch, req.First, req.Entries))
	case MethodReplicaFence:
		var req ReplicaFenceRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		return countReply(h.ReplicaFence(ctx, req.Topic, req.Segment, req.Epoch))
	case MethodReplicaPull:
		var req ReplicaPullRequest
		if err := req.Decode(payload); err != nil {
			return nil, err
		}
		return countReply(h.ReplicaPull(ctx, req.Topic, req.Segment, req.Count, req.Sources))
	}
	return nil, &rpc.Error{Message: fmt.Sprintf("unknown rpc method %d", method)}
}

func countReply(c uint64, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return (&CountReply{Count: c}).Append(nil), nil
}
