package wire

import (
	"context"
	"fmt"
	"time"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/rpc"
)

// Caller carries requests to an address (node/rpc's Pool).
type Caller interface {
	Call(ctx context.Context, addr string, method byte, payload []byte) ([]byte, error)
	Go(ctx context.Context, addr string, method byte, payload []byte, timeout time.Duration, cb func([]byte, error))
	// GoEncoded is Go with a payload encoded straight into the
	// connection's send buffer.
	GoEncoded(ctx context.Context, addr string, method byte, enc rpc.Encoder, timeout time.Duration, cb func([]byte, error))
}

// Client is the sending side of every method for one peer. Each call is
// bounded by Timeout (ReplicaPull only by its context: a copy takes long)
// and returns typed errors (FromRPC). A Client whose Err is set (the
// peer's address is unknown) fails every call with it.
type Client struct {
	Caller  Caller
	Addr    string
	Timeout time.Duration
	Err     error
}

type appender interface{ Append([]byte) []byte }
type decoder interface{ Decode([]byte) error }

func (c Client) call(ctx context.Context, method byte, req appender, reply decoder) error {
	if c.Err != nil {
		return c.Err
	}
	if c.Timeout > 0 && method != MethodReplicaPull {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	var payload []byte
	if req != nil {
		payload = req.Append(nil)
	}
	resp, err := c.Caller.Call(ctx, c.Addr, method, payload)
	if err != nil {
		return FromRPC(err)
	}
	if reply != nil {
		return reply.Decode(resp)
	}
	return nil
}

func (c Client) goCall(method byte, payload []byte, cb func([]byte, error)) {
	if c.Err != nil {
		cb(nil, c.Err)
		return
	}
	// The pool bounds a dial itself; the call has its own timeout.
	c.Caller.Go(context.Background(), c.Addr, method, payload, c.Timeout, func(resp []byte, err error) {
		cb(resp, FromRPC(err))
	})
}

// AppendAsync forwards entries to the segment leader; cb may run on the
// connection's reader goroutine.
func (c Client) AppendAsync(topic string, entries [][]byte, cb func(error)) {
	c.AppendPartsAsync(topic, [][][]byte{entries}, cb)
}

// AppendPartsAsync forwards one AppendRequest whose entries are the parts
// in order, encoded straight into the connection's send buffer (no copy of
// the batch is made first); cb may run on the connection's reader
// goroutine. The parts are not used after AppendPartsAsync returns.
func (c Client) AppendPartsAsync(topic string, parts [][][]byte, cb func(error)) {
	if c.Err != nil {
		cb(c.Err)
		return
	}
	c.Caller.GoEncoded(context.Background(), c.Addr, MethodAppend, appendParts{topic: topic, parts: parts}, c.Timeout, func(_ []byte, err error) {
		cb(FromRPC(err))
	})
}

func (c Client) Append(ctx context.Context, topic string, entries [][]byte) error {
	return c.call(ctx, MethodAppend, &AppendRequest{Topic: topic, Entries: entries}, nil)
}

func (c Client) Get(ctx context.Context, req *GetRequest) ([][]byte, bool, error) {
	var r GetReply
	err := c.call(ctx, MethodGet, req, &r)
	return r.Entries, r.More, err
}

func (c Client) Read(ctx context.Context, topic string, seg, off uint64, max int) ([][]byte, error) {
	var r EntriesReply
	err := c.call(ctx, MethodRead, &ReadRequest{Topic: topic, Segment: seg, Offset: off, Max: uint32(max)}, &r)
	return r.Entries, err
}

func (c Client) RecoveryRead(ctx context.Context, topic string, seg, off uint64, max int) ([][]byte, error) {
	var r EntriesReply
	err := c.call(ctx, MethodRead, &ReadRequest{Topic: topic, Segment: seg, Offset: off, Max: uint32(max), Recovery: true}, &r)
	return r.Entries, err
}

func (c Client) StepDown(ctx context.Context, topic string, seg uint64) error {
	return c.call(ctx, MethodStepDown, &SegmentRequest{Topic: topic, Segment: seg}, nil)
}

func (c Client) CommitCursors(ctx context.Context) error {
	return c.call(ctx, MethodCommitCursors, nil, nil)
}

type rawRequest []byte

func (r rawRequest) Append(b []byte) []byte { return append(b, r...) }

type resultReply struct{ metadata.Result }

func (r *resultReply) Decode(b []byte) (err error) {
	r.Result, err = DecodeResult(b)
	return err
}

// Propose submits an encoded metadata command to the Raft leader.
func (c Client) Propose(ctx context.Context, cmd []byte) (metadata.Result, error) {
	var r resultReply
	err := c.call(ctx, MethodPropose, rawRequest(cmd), &r)
	return r.Result, err
}

func (c Client) CreateTopic(ctx context.Context, topic string, rf, ack int) error {
	return c.call(ctx, MethodCreateTopic, &CreateTopicRequest{Topic: topic, RF: rf, Ack: ack}, nil)
}

func (c Client) Join(ctx context.Context, id uint64, addr string) error {
	return c.call(ctx, MethodJoin, &JoinRequest{ID: id, Addr: addr}, nil)
}

func (c Client) Heartbeat(ctx context.Context, hb *Heartbeat) error {
	return c.call(ctx, MethodHeartbeat, hb, nil)
}

func (c Client) Fence(ctx context.Context, topic string, seg, min uint64) (uint64, bool, error) {
	var r FenceReply
	err := c.call(ctx, MethodFence, &FenceRequest{Topic: topic, Segment: seg, Min: min}, &r)
	return r.Count, r.Fenced, err
}

func (c Client) Unfence(ctx context.Context, topic string, seg uint64) error {
	return c.call(ctx, MethodUnfence, &SegmentRequest{Topic: topic, Segment: seg}, nil)
}

func (c Client) ReadIndex(ctx context.Context) (uint64, error) {
	var r CountReply
	err := c.call(ctx, MethodReadIndex, nil, &r)
	return r.Count, err
}

func (c Client) RemoveNode(ctx context.Context, id uint64) error {
	return c.call(ctx, MethodRemoveNode, &NodeRequest{ID: id}, nil)
}

func (c Client) RollHint(ctx context.Context, topic string) error {
	return c.call(ctx, MethodRollHint, &TopicRequest{Topic: topic}, nil)
}

func (c Client) ReplicaAppend(ctx context.Context, topic string, seg, epoch, first uint64, entries [][]byte) (uint64, error) {
	var r CountReply
	err := c.call(ctx, MethodReplicaAppend, &ReplicaAppendRequest{Topic: topic, Segment: seg, Epoch: epoch, First: first, Entries: entries}, &r)
	return r.Count, err
}

// ReplicaAppendAsync streams one batch to a replica; cb gets its count.
func (c Client) ReplicaAppendAsync(topic string, seg, epoch, first uint64, entries [][]byte, cb func(uint64, error)) {
	req := ReplicaAppendRequest{Topic: topic, Segment: seg, Epoch: epoch, First: first, Entries: entries}
	c.goCall(MethodReplicaAppend, req.Append(nil), func(resp []byte, err error) {
		var r CountReply
		if err == nil {
			err = r.Decode(resp)
		}
		cb(r.Count, err)
	})
}

func (c Client) ReplicaFence(ctx context.Context, topic string, seg, epoch uint64) (uint64, error) {
	var r CountReply
	err := c.call(ctx, MethodReplicaFence, &ReplicaFenceRequest{Topic: topic, Segment: seg, Epoch: epoch}, &r)
	return r.Count, err
}

// ReplicaPull asks the peer to copy a sealed segment from sources; it
// fails unless the peer then holds count entries.
func (c Client) ReplicaPull(ctx context.Context, topic string, seg, count uint64, sources []uint64) (uint64, error) {
	var r CountReply
	if err := c.call(ctx, MethodReplicaPull, &ReplicaPullRequest{Topic: topic, Segment: seg, Count: count, Sources: sources}, &r); err != nil {
		return 0, err
	}
	if r.Count < count {
		return r.Count, fmt.Errorf("node at %s holds %d of %d entries", c.Addr, r.Count, count)
	}
	return r.Count, nil
}
