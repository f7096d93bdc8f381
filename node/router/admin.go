package router

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/wire"
)

// Topic administration: retention options, ALTER and DELETE.

const alterUsage = "ALTER <topic> max_age_ms=<n> max_bytes=<n> max_entries=<n> (any of them; 0 removes a limit)"

// retentionArg parses one max_age_ms=/max_bytes=/max_entries= argument
// into cmd; ok is false when a is not a retention key at all.
func retentionArg(a string, cmd *metadata.AlterTopic) (ok bool, err error) {
	key, val, _ := strings.Cut(strings.ToLower(a), "=")
	switch key {
	case "max_age_ms", "max_bytes", "max_entries":
	default:
		return false, nil
	}
	v, perr := strconv.ParseUint(val, 10, 63)
	if perr != nil {
		return true, fmt.Errorf("%s=%q: want a whole number >= 0", key, val)
	}
	switch key {
	case "max_age_ms":
		n := int64(v)
		cmd.MaxAgeMs = &n
	case "max_bytes":
		cmd.MaxBytes = &v
	case "max_entries":
		cmd.MaxEntries = &v
	}
	return true, nil
}

// Alter serves ALTER <topic> key=value...: it changes the named limits.
func (r *Router) Alter(ctx context.Context, args []string) protocol.Reply {
	if len(args) < 2 {
		return protocol.Errf("ALTER takes a topic and at least one setting (usage: %s)", alterUsage)
	}
	if err := engine.ValidateTopic(args[0]); err != nil {
		return protocol.ErrReply(err)
	}
	cmd := metadata.AlterTopic{Topic: args[0]}
	for _, a := range args[1:] {
		ok, err := retentionArg(a, &cmd)
		if err != nil {
			return protocol.Errf("%v (usage: %s)", err, alterUsage)
		}
		if !ok {
			return protocol.Errf("unknown setting %q (usage: %s)", a, alterUsage)
		}
	}
	if !r.KnownTopic(ctx, cmd.Topic) {
		return protocol.Errf("unknown topic %s", cmd.Topic)
	}
	return r.propose(ctx, cmd)
}

// Delete serves DELETE <topic>: the topic's data on every replica, its
// metadata, cursor and groups go; a later PUT or REGISTER makes a new topic
// from offset 0.
func (r *Router) Delete(ctx context.Context, args []string) protocol.Reply {
	if len(args) != 1 {
		return protocol.Errf("DELETE takes exactly one topic (usage: DELETE <topic>)")
	}
	if err := engine.ValidateTopic(args[0]); err != nil {
		return protocol.ErrReply(err)
	}
	if !r.KnownTopic(ctx, args[0]) {
		return protocol.Errf("unknown topic %s", args[0])
	}
	rep := r.propose(ctx, metadata.DeleteTopic{Topic: args[0]})
	if rep.Kind == protocol.ReplyOK {
		r.Logger.Info("topic deleted", "topic", args[0])
	}
	return rep
}

// propose proposes cmd and waits until this node applied it: read your
// writes, STATE on this node shows the change once OK.
func (r *Router) propose(ctx context.Context, cmd metadata.Command) protocol.Reply {
	if err := r.proposeErr(ctx, cmd); err != nil {
		return ErrReply(err)
	}
	return protocol.OK()
}

// appliedHere reports whether this node's metadata already shows cmd.
func (r *Router) appliedHere(cmd metadata.Command) bool {
	switch c := cmd.(type) {
	case metadata.DeleteTopic:
		_, ok := r.FSM.Route(c.Topic)
		return !ok
	case metadata.AlterTopic:
		t, ok := r.FSM.Topic(c.Topic)
		l := t.Retention.Effective(metadata.Limits{})
		return ok && (c.MaxAgeMs == nil || l.MaxAgeMs == *c.MaxAgeMs) &&
			(c.MaxBytes == nil || l.MaxBytes == *c.MaxBytes) && (c.MaxEntries == nil || l.MaxEntries == *c.MaxEntries)
	}
	return true
}

// AllocProducerIDs gives node its next block of Kafka producer ids.
func (r *Router) AllocProducerIDs(ctx context.Context, node uint64) error {
	return r.proposeErr(ctx, metadata.AllocProducerIDs{Node: node})
}

// DeleteTopic deletes an existing topic (DELETE for the Kafka listener).
func (r *Router) DeleteTopic(ctx context.Context, topic string) error {
	if !r.KnownTopic(ctx, topic) {
		return fmt.Errorf("%w %s", wire.ErrUnknownTopic, topic)
	}
	return r.proposeErr(ctx, metadata.DeleteTopic{Topic: topic})
}

// AlterTopic changes an existing topic's limits (ALTER for the Kafka
// listener).
func (r *Router) AlterTopic(ctx context.Context, cmd metadata.AlterTopic) error {
	if !r.KnownTopic(ctx, cmd.Topic) {
		return fmt.Errorf("%w %s", wire.ErrUnknownTopic, cmd.Topic)
	}
	return r.proposeErr(ctx, cmd)
}

func (r *Router) proposeErr(ctx context.Context, cmd metadata.Command) error {
	res, err := r.Leader.Propose(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return err
	}
	if r.Leader.CatchUp(ctx) == nil {
		wctx, cancel := context.WithTimeout(ctx, fsmDrainWait)
		defer cancel()
		_ = r.waitFor(wctx, func() bool { return r.appliedHere(cmd) })
	}
	return nil
}
