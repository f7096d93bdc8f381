package node

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/cursor"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/router"
	"github.com/walrus-go/walrus/node/server"
	"github.com/walrus-go/walrus/node/statedoc"
)

var _ server.Handler = (*Node)(nil)

// maxConcurrentRegisters bounds the REGISTERs of one pipelined run served
// at once.
const maxConcurrentRegisters = 256

// Extension commands.
const (
	// CmdTopics answers a JSON array of topic summaries.
	CmdTopics = "TOPICS"
	// CmdRemoveNode ("REMOVE_NODE <id>") removes a node from the cluster.
	CmdRemoveNode = "REMOVE_NODE"
	// CmdCreate ("CREATE <topic> [rf=<n>] [ack=<n>] [max_age_ms=<n>]
	// [max_bytes=<n>] [max_entries=<n>]") registers a topic with its own
	// replication factor, ack quorum and retention limits.
	CmdCreate = "CREATE"
	// CmdAlter ("ALTER <topic> key=value...") changes retention limits.
	CmdAlter = "ALTER"
	// CmdDelete ("DELETE <topic>") deletes a topic and its data.
	CmdDelete = "DELETE"
)

// Handle implements server.Handler: it executes reqs in order and returns
// one reply per request. Runs of consecutive PUTs are appended as one batch
// per topic (topics in parallel) and runs of GETs on one topic are served
// with one cursor call, which is what makes pipelined clients fast.
// With ACLs on, denied requests are answered first and never executed.
func (n *Node) Handle(ctx context.Context, reqs []protocol.Request) []protocol.Reply {
	return n.guard.Handle(ctx, reqs, n.handle)
}

func (n *Node) handle(ctx context.Context, reqs []protocol.Request) []protocol.Reply {
	replies := make([]protocol.Reply, len(reqs))
	rt := n.parts.router
	for i := 0; i < len(reqs); {
		start := time.Now()
		switch reqs[i].Command {
		case protocol.CmdPut:
			j := i + 1
			for j < len(reqs) && reqs[j].Command == protocol.CmdPut {
				j++
			}
			rt.Puts(ctx, reqs[i:j], replies[i:j])
			n.observe(reqs[i:j], replies[i:j], start)
			i = j
		case protocol.CmdGet:
			j := i + 1
			for j < len(reqs) && j-i < cursor.MaxGetBatch && reqs[j].Command == protocol.CmdGet && reqs[j].Topic == reqs[i].Topic {
				j++
			}
			rt.Gets(ctx, reqs[i].Topic, replies[i:j])
			n.observe(reqs[i:j], replies[i:j], start)
			i = j
		case protocol.CmdRegister:
			// A pipelined run of REGISTERs is served concurrently, so the
			// Raft leader can create the topics in a few batched entries.
			j := i + 1
			for j < len(reqs) && j-i < maxConcurrentRegisters && reqs[j].Command == protocol.CmdRegister {
				j++
			}
			var wg sync.WaitGroup
			for k := i; k < j; k++ {
				wg.Go(func() { replies[k] = n.handleOne(ctx, reqs[k]) })
			}
			wg.Wait()
			n.observe(reqs[i:j], replies[i:j], start)
			i = j
		default:
			replies[i] = n.handleOne(ctx, reqs[i])
			n.observe(reqs[i:i+1], replies[i:i+1], start)
			i++
		}
	}
	return replies
}

func (n *Node) observe(reqs []protocol.Request, replies []protocol.Reply, start time.Time) {
	d := time.Since(start)
	for i, r := range replies {
		res := metrics.ResultOK
		switch r.Kind {
		case protocol.ReplyErr:
			res = metrics.ResultError
		case protocol.ReplyEmpty:
			res = metrics.ResultEmpty
		}
		n.m.ObserveRequest(reqs[i].Command, res, d)
	}
}

func (n *Node) handleOne(ctx context.Context, req protocol.Request) protocol.Reply {
	p := n.parts
	switch req.Command {
	case protocol.CmdRegister:
		if err := engine.ValidateTopic(req.Topic); err != nil {
			return protocol.ErrReply(err)
		}
		if _, ok := n.fsm.Route(req.Topic); !ok {
			if err := p.router.CheckNew(req.Topic); err != nil {
				return protocol.ErrReply(err)
			}
		}
		if err := p.router.CreateTopic(ctx, req.Topic, 0, -1); err != nil {
			return router.ErrReply(err)
		}
		return protocol.OK()
	case protocol.CmdState:
		p.router.KnownTopic(ctx, req.Topic)
		t, ok := n.fsm.Topic(req.Topic)
		if !ok {
			return protocol.Errf("unknown topic %s", req.Topic)
		}
		return jsonReply(statedoc.State(t, p.roll.UnderReplicatedIn(req.Topic), n.cfg.Retention))
	case protocol.CmdMetrics:
		doc, err := n.metricsDoc()
		if err != nil {
			return router.ErrReply(err)
		}
		return jsonReply(doc)
	case CmdTopics:
		return jsonReply(n.topicsDoc())
	case CmdCreate:
		return p.router.Create(ctx, req.Args)
	case CmdAlter:
		return p.router.Alter(ctx, req.Args)
	case CmdDelete:
		return p.router.Delete(ctx, req.Args)
	case protocol.CmdOffsets, protocol.CmdSeek, protocol.CmdFetch, protocol.CmdCommit,
		protocol.CmdCommitted, protocol.CmdRead, protocol.CmdAck, protocol.CmdGroups:
		return n.handleLog(ctx, req)
	case CmdRemoveNode:
		if len(req.Args) != 1 {
			return protocol.Errf("usage: REMOVE_NODE <node_id>")
		}
		id, err := strconv.ParseUint(req.Args[0], 10, 64)
		if err != nil || id == 0 {
			return protocol.Errf("invalid node id %q", req.Args[0])
		}
		if err := p.cluster.RemoveNode(ctx, id); err != nil {
			return router.ErrReply(err)
		}
		return protocol.OK()
	}
	return protocol.UnknownCommand(req.Command)
}
