package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/server"
)

var _ server.Handler = (*Node)(nil)

// Extension commands.
const (
	// CmdTopics answers a JSON array of topic summaries.
	CmdTopics = "TOPICS"
	// CmdRemoveNode ("REMOVE_NODE <id>") removes a node from the cluster.
	CmdRemoveNode = "REMOVE_NODE"
	// CmdCreate ("CREATE <topic> [rf=<n>] [ack=<n>]") registers a topic
	// with its own replication factor and ack quorum (replica.go).
	CmdCreate = "CREATE"
)

// Handle implements server.Handler: it executes reqs in order and returns
// one reply per request. Runs of consecutive PUTs are appended as one batch
// per topic (topics in parallel) and runs of GETs on one topic are served
// with one cursor call, which is what makes pipelined clients fast.
func (n *Node) Handle(ctx context.Context, reqs []protocol.Request) []protocol.Reply {
	replies := make([]protocol.Reply, len(reqs))
	for i := 0; i < len(reqs); {
		start := time.Now()
		switch reqs[i].Command {
		case protocol.CmdPut:
			j := i + 1
			for j < len(reqs) && reqs[j].Command == protocol.CmdPut {
				j++
			}
			n.handlePuts(ctx, reqs[i:j], replies[i:j])
			n.observe(reqs[i:j], replies[i:j], start)
			i = j
		case protocol.CmdGet:
			j := i + 1
			for j < len(reqs) && j-i < maxGetBatch && reqs[j].Command == protocol.CmdGet && reqs[j].Topic == reqs[i].Topic {
				j++
			}
			n.handleGets(ctx, reqs[i].Topic, replies[i:j])
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
	switch req.Command {
	case protocol.CmdRegister:
		if err := engine.ValidateTopic(req.Topic); err != nil {
			return protocol.ErrReply(err)
		}
		if err := n.createTopic(ctx, req.Topic); err != nil {
			return n.errReply(err)
		}
		return protocol.OK()
	case protocol.CmdState:
		n.knownTopic(ctx, req.Topic)
		t, ok := n.fsm.Topic(req.Topic)
		if !ok {
			return protocol.Errf("unknown topic %s", req.Topic)
		}
		st := stateOf(t)
		for _, u := range n.underReplicatedSegments() {
			if u.Topic == req.Topic {
				if st.UnderReplicated == nil {
					st.UnderReplicated = map[string][]uint64{}
				}
				st.UnderReplicated[strconv.FormatUint(u.Segment, 10)] = u.Missing
			}
		}
		b, err := jsonMarshal(st)
		if err != nil {
			return n.errReply(err)
		}
		return protocol.Raw(b)
	case protocol.CmdMetrics:
		b, err := n.metricsJSON()
		if err != nil {
			return n.errReply(err)
		}
		return protocol.Raw(b)
	case CmdTopics:
		b, err := n.topicsJSON()
		if err != nil {
			return n.errReply(err)
		}
		return protocol.Raw(b)
	case CmdCreate:
		return n.handleCreate(ctx, req.Args)
	case CmdRemoveNode:
		if len(req.Args) != 1 {
			return protocol.Errf("usage: REMOVE_NODE <node_id>")
		}
		id, err := strconv.ParseUint(req.Args[0], 10, 64)
		if err != nil || id == 0 {
			return protocol.Errf("invalid node id %q", req.Args[0])
		}
		if err := n.RemoveNode(ctx, id); err != nil {
			return n.errReply(err)
		}
		return protocol.OK()
	}
	return protocol.UnknownCommand(req.Command)
}

// errReply renders an error for the client. Unknown topics use the
// original's wording.
func (n *Node) errReply(err error) protocol.Reply {
	var nl *NotLeaderError
	switch {
	case errors.Is(err, ErrUnknownTopic):
		return protocol.ErrReply(err)
	case errors.As(err, &nl):
		return protocol.ErrReply(nl)
	case errors.Is(err, context.DeadlineExceeded):
		return protocol.Errf("timed out: %v", err)
	}
	return protocol.ErrReply(err)
}

// handlePuts appends a run of PUTs: one batch per topic, topics in
// parallel, entries of a topic in request order.
func (n *Node) handlePuts(ctx context.Context, reqs []protocol.Request, replies []protocol.Reply) {
	type group struct {
		topic string
		idx   []int
	}
	var groups []*group
	byTopic := map[string]*group{}
	for i, r := range reqs {
		g, ok := byTopic[r.Topic]
		if !ok {
			g = &group{topic: r.Topic}
			byTopic[r.Topic] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
	}
	run := func(g *group) {
		// Copy the payloads: requests alias the connection's read buffer,
		// and an append that outlives a timed-out request must not see it
		// reused.
		size := 0
		for _, i := range g.idx {
			size += len(reqs[i].Payload)
		}
		buf := make([]byte, 0, size)
		entries := make([][]byte, len(g.idx))
		for k, i := range g.idx {
			off := len(buf)
			buf = append(buf, reqs[i].Payload...)
			entries[k] = buf[off:len(buf):len(buf)]
		}
		err := n.put(ctx, g.topic, entries)
		rep := protocol.OK()
		if err != nil {
			rep = n.errReply(err)
		}
		for _, i := range g.idx {
			replies[i] = rep
		}
	}
	if len(groups) == 1 {
		run(groups[0])
		return
	}
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(g)
		}()
	}
	wg.Wait()
}

// handleGets serves a run of GETs on one topic with one cursor call.
func (n *Node) handleGets(ctx context.Context, topic string, replies []protocol.Reply) {
	gctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	entries, err := n.get(gctx, topic, len(replies))
	if err != nil {
		rep := n.errReply(err)
		for i := range replies {
			replies[i] = rep
		}
		return
	}
	for i := range replies {
		if i < len(entries) {
			replies[i] = protocol.Payload(entries[i])
		} else {
			replies[i] = protocol.Empty()
		}
	}
}

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("node: encode json: %w", err)
	}
	return b, nil
}
