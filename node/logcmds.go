package node

import (
	"context"
	"errors"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/record"
	"github.com/walrus-go/walrus/node/retry"
	"github.com/walrus-go/walrus/node/router"
	"github.com/walrus-go/walrus/node/status"
	"github.com/walrus-go/walrus/node/topiclog"
	"github.com/walrus-go/walrus/node/wire"
)

// fetchBytes bounds the payload of one FETCH reply.
const fetchBytes = 1 << 20

// logRetryFor bounds how long a log command retries while the metadata
// moves (a rollover or a failover in progress).
const logRetryFor = 5 * time.Second

// handleLog serves the log commands: reads on this node (from whichever
// node holds the data), group commands on the group coordinator.
func (n *Node) handleLog(ctx context.Context, req protocol.Request) protocol.Reply {
	lr, err := protocol.ParseLog(req)
	if err != nil {
		return protocol.ErrReply(err)
	}
	p := n.parts
	if lr.Topic != "" && !p.router.KnownTopic(ctx, lr.Topic) {
		return protocol.Errf("unknown topic %s", lr.Topic)
	}
	var out protocol.Reply
	err = n.retryLog(ctx, func(ctx context.Context) (err error) {
		out, err = n.runLog(ctx, lr)
		return err
	})
	if err != nil {
		return logErrReply(err)
	}
	return out
}

func (n *Node) runLog(ctx context.Context, lr protocol.LogRequest) (protocol.Reply, error) {
	p := n.parts
	switch lr.Command {
	case protocol.CmdOffsets:
		e, l, err := p.topics.Offsets(ctx, lr.Topic)
		if err != nil {
			return protocol.Reply{}, err
		}
		return jsonReply(status.Offsets{Topic: lr.Topic, Earliest: e, Latest: l}), nil
	case protocol.CmdSeek:
		off, err := p.topics.Seek(ctx, lr.Topic, lr.Time)
		if err != nil {
			return protocol.Reply{}, err
		}
		return jsonReply(status.Seek{Topic: lr.Topic, Offset: off}), nil
	case protocol.CmdFetch:
		entries, next, err := p.topics.Fetch(ctx, lr.Topic, lr.Offset, lr.Max, fetchBytes)
		if err != nil {
			return protocol.Reply{}, err
		}
		if len(entries) == 0 {
			return protocol.Empty(), nil
		}
		return protocol.Raw(protocol.FetchJSON(make([]byte, 0, protocol.EntriesJSONSize(entries)), lr.Topic, next, entries)), nil
	}
	greq := &wire.GroupRequest{Group: lr.Group, Topic: lr.Topic, Max: uint32(lr.Max), AckWaitMs: uint32(lr.AckWait / time.Millisecond)}
	switch lr.Command {
	case protocol.CmdRead:
		greq.Op = wire.GroupRead
	case protocol.CmdAck:
		greq.Op, greq.Offsets = wire.GroupAck, lr.Offsets
	case protocol.CmdCommit:
		greq.Op, greq.Offsets = wire.GroupCommit, []uint64{lr.Offset}
	case protocol.CmdCommitted:
		greq.Op = wire.GroupCommitted
	case protocol.CmdGroups:
		greq.Op = wire.GroupList
	}
	rep, err := p.cluster.Group(ctx, greq)
	if err != nil {
		return protocol.Reply{}, err
	}
	return protocol.Reply{Kind: protocol.ReplyKind(rep.Kind), Body: rep.Body}, nil
}

// retryLog retries f while its error is transient (the segment leader
// moved, the holder is restarting), waiting for metadata changes.
func (n *Node) retryLog(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, logRetryFor)
	defer cancel()
	var b retry.Backoff
	for {
		err := f(ctx)
		if err == nil || !retry.Transient(err) || errors.Is(err, topiclog.ErrOutOfRange) {
			return err
		}
		if werr := b.Wait(ctx, n.fsm.Changed(), n.life.stopping); werr != nil {
			return err
		}
	}
}

func logErrReply(err error) protocol.Reply {
	var re *topiclog.RangeError
	switch {
	case errors.As(err, &re):
		return protocol.ErrReply(re)
	case errors.Is(err, wire.ErrUnknownTopic):
		return protocol.ErrReply(err)
	case errors.Is(err, record.ErrCorrupt):
		return protocol.Errf("stored entry is corrupt: %v", err)
	}
	return router.ErrReply(err)
}
