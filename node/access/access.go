// Package access maps Walrus client requests onto ACL checks: which
// (operation, resource) pairs each command needs (docs/security.md has
// the table), and a Handle wrapper that answers denied requests with
// "ERR not authorized: ..." so they never reach the node. The principal
// comes from the request context (auth.WithPrincipal, set by the client
// listener after AUTH or from a verified client certificate).
package access

import (
	"context"

	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/auth"
	"github.com/walrus-go/walrus/node/protocol"
)

// Extension command names the node serves (node/handler.go); repeated
// here to keep this package free of the node package.
const (
	cmdTopics     = "TOPICS"
	cmdRemoveNode = "REMOVE_NODE"
	cmdCreate     = "CREATE"
	cmdAlter      = "ALTER"
	cmdDelete     = "DELETE"
)

// Need is one permission a request needs.
type Need struct {
	Op       acl.Op
	Resource acl.Resource
}

// Needs returns the permissions req needs. exists reports whether a
// topic exists already (a PUT to a missing topic with auto-create on also
// needs create); it may be nil. A request too malformed to name its
// resources needs nothing: the node rejects it without effect.
func Needs(req protocol.Request, autoCreate bool, exists func(string) bool) []Need {
	topic := func(op acl.Op, t string) Need { return Need{op, acl.TopicRes(t)} }
	firstArg := func() (string, bool) {
		if len(req.Args) == 0 {
			return "", false
		}
		return req.Args[0], true
	}
	switch req.Command {
	case protocol.CmdPut:
		n := []Need{topic(acl.Write, req.Topic)}
		if autoCreate && exists != nil && !exists(req.Topic) {
			n = append(n, topic(acl.Create, req.Topic))
		}
		return n
	case protocol.CmdGet:
		return []Need{topic(acl.Read, req.Topic)}
	case protocol.CmdRegister:
		return []Need{topic(acl.Create, req.Topic)}
	case protocol.CmdState:
		return []Need{topic(acl.Describe, req.Topic)}
	case protocol.CmdMetrics, cmdTopics:
		return []Need{{acl.Describe, acl.ClusterRes()}}
	case cmdRemoveNode:
		return []Need{{acl.Admin, acl.ClusterRes()}}
	case cmdCreate:
		t, ok := firstArg()
		if !ok {
			return nil
		}
		n := []Need{topic(acl.Create, t)}
		if len(req.Args) > 1 {
			n = append(n, topic(acl.Admin, t))
		}
		return n
	case cmdAlter, cmdDelete:
		if t, ok := firstArg(); ok {
			return []Need{topic(acl.Admin, t)}
		}
		return nil
	case protocol.CmdOffsets, protocol.CmdSeek, protocol.CmdFetch, protocol.CmdRead,
		protocol.CmdAck, protocol.CmdCommit, protocol.CmdCommitted, protocol.CmdGroups:
		return logNeeds(req)
	}
	return nil
}

func logNeeds(req protocol.Request) []Need {
	lr, err := protocol.ParseLog(req)
	if err != nil {
		return nil
	}
	switch lr.Command {
	case protocol.CmdOffsets, protocol.CmdSeek, protocol.CmdFetch:
		return []Need{{acl.Read, acl.TopicRes(lr.Topic)}}
	case protocol.CmdRead, protocol.CmdAck, protocol.CmdCommit:
		return []Need{{acl.Read, acl.TopicRes(lr.Topic)}, {acl.Read, acl.GroupRes(lr.Group)}}
	case protocol.CmdCommitted:
		return []Need{{acl.Describe, acl.TopicRes(lr.Topic)}, {acl.Describe, acl.GroupRes(lr.Group)}}
	case protocol.CmdGroups:
		if lr.Topic == "" {
			return []Need{{acl.Describe, acl.ClusterRes()}}
		}
		return []Need{{acl.Describe, acl.TopicRes(lr.Topic)}}
	}
	return nil
}

// Guard authorizes the requests of one node.
type Guard struct {
	ACL        *acl.Authorizer
	AutoCreate bool
	// Exists reports whether a topic exists (for PUT with auto-create).
	Exists func(topic string) bool
	// Topic, if set, names the topic a log's permissions are checked on:
	// the Kafka topic T of its partition log "T#p" (kafka.SplitLogName),
	// so a rule on T covers every partition on both ports.
	Topic func(log string) string
}

// Check returns the denial of req for principal, or nil.
func (g *Guard) Check(principal string, req protocol.Request) error {
	for _, n := range Needs(req, g.AutoCreate, g.Exists) {
		if n.Resource.Kind == acl.Topic && g.Topic != nil {
			n.Resource.Name = g.Topic(n.Resource.Name)
		}
		if err := g.ACL.Check(principal, n.Op, n.Resource); err != nil {
			return err
		}
	}
	return nil
}

// Handle answers the denied requests of reqs itself and passes the others,
// in order, to next. With ACLs off it is next(ctx, reqs).
func (g *Guard) Handle(ctx context.Context, reqs []protocol.Request, next func(context.Context, []protocol.Request) []protocol.Reply) []protocol.Reply {
	if g == nil || !g.ACL.Enabled() {
		return next(ctx, reqs)
	}
	principal := auth.Principal(ctx)
	var denied map[int]protocol.Reply
	for i := range reqs {
		if err := g.Check(principal, reqs[i]); err != nil {
			if denied == nil {
				denied = make(map[int]protocol.Reply)
			}
			denied[i] = protocol.ErrReply(err)
		}
	}
	if denied == nil {
		return next(ctx, reqs)
	}
	allowed := make([]protocol.Request, 0, len(reqs)-len(denied))
	for i := range reqs {
		if _, ok := denied[i]; !ok {
			allowed = append(allowed, reqs[i])
		}
	}
	var got []protocol.Reply
	if len(allowed) > 0 {
		got = next(ctx, allowed)
	}
	out := make([]protocol.Reply, len(reqs))
	j := 0
	for i := range reqs {
		if r, ok := denied[i]; ok {
			out[i] = r
			continue
		}
		if j < len(got) {
			out[i] = got[j]
		} else {
			out[i] = protocol.Errf("internal error")
		}
		j++
	}
	return out
}
