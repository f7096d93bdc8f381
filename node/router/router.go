// Package router owns the client data path of a node: PUTs go to the
// topic's open segment leader (appended here when that is this node,
// forwarded through a per-topic batcher otherwise) and are retried while
// the lease moves; GETs go to the shared cursor on the Raft leader; topics
// are created on first use (or by REGISTER/CREATE) through the Raft leader,
// which picks their first leader and replica set.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/placement"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/retry"
	"github.com/walrus-go/walrus/node/wire"
)

// Config is the router's share of the node's configuration.
type Config struct {
	Self              uint64
	AutoCreateTopics  bool
	ReplicationFactor int
	AckQuorum         int
}

// Leader is what the router asks of the Raft leader (routed there by the
// cluster part).
type Leader interface {
	CreateTopic(ctx context.Context, topic string, rf, ack int) error
	Propose(ctx context.Context, cmd metadata.Command) (metadata.Result, error)
	Get(ctx context.Context, req *wire.GetRequest) ([][]byte, bool, error)
	CatchUp(ctx context.Context) error
	LiveVoters() ([]uint64, error)
}

// Appender appends to an open segment led by this node.
type Appender interface {
	Append(ctx context.Context, topic string, entries [][]byte) error
}

// Forwarder sends an append to another node (a wire.Client): one
// request whose entries are the parts in order; the parts are not used
// after AppendPartsAsync returns.
type Forwarder interface {
	AppendPartsAsync(topic string, parts [][][]byte, cb func(error))
}

// Deps are the parts the router uses.
type Deps struct {
	Cons    *consensus.Consensus
	FSM     *metadata.FSM
	Leader  Leader
	Local   Appender
	Peer    func(id uint64) Forwarder
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Stopping is closed when the node begins its shutdown.
	Stopping <-chan struct{}
	// Reserved refuses names only another listener creates (Kafka
	// partition logs); nil allows every name.
	Reserved func(topic string) error
}

// Router is the client data path.
type Router struct {
	cfg Config
	Deps
	fwd forwarders
	// creates batches the topic creations this node proposes as the
	// Raft leader.
	creates creations
	// reqIDs numbers GETs sent to the cursor owner; it starts at a random
	// value so ids from before a restart are not reused.
	reqIDs atomic.Uint64
}

// New builds the router; Close stops its forwarders.
func New(cfg Config, d Deps) *Router {
	r := &Router{cfg: cfg, Deps: d}
	r.reqIDs.Store(rand.Uint64() >> 1)
	r.fwd.init()
	return r
}

// Close stops the forwarding batchers; queued appends fail.
func (r *Router) Close() { r.fwd.stopAll() }

// Put appends entries to topic as one batch, routing to the segment
// leader and retrying on lease changes.
func (r *Router) Put(ctx context.Context, topic string, entries [][]byte) error {
	ctx, cancel := context.WithTimeout(ctx, retry.RequestTimeout)
	defer cancel()
	var (
		b       retry.Backoff
		lastErr error
	)
	for range retry.MaxAttempts {
		changed := r.FSM.Changed()
		rt, ok := r.FSM.Route(topic)
		if !ok {
			if !r.cfg.AutoCreateTopics && !r.KnownTopic(ctx, topic) {
				return fmt.Errorf("%w %s", wire.ErrUnknownTopic, topic)
			}
			if err := r.ensureTopic(ctx, topic); err != nil {
				return err
			}
			continue
		}
		var err error
		if rt.Leader == r.cfg.Self {
			err = r.Local.Append(ctx, topic, entries)
		} else {
			err = r.forward(ctx, rt.Leader, topic, entries)
		}
		if err == nil {
			return nil
		}
		if !retry.Transient(err) || (rt.Leader != r.cfg.Self && wire.OutcomeUnknown(err)) {
			return err
		}
		lastErr = err
		if berr := b.Wait(ctx, changed, r.Stopping); berr != nil {
			return fmt.Errorf("%w (last: %v)", berr, lastErr)
		}
	}
	return lastErr
}

// Get hands out up to max entries from the topic's shared cursor, through
// the Raft leader, in as many calls as the byte budget needs.
func (r *Router) Get(ctx context.Context, topic string, max int) ([][]byte, error) {
	var out [][]byte
	for len(out) < max {
		if !r.KnownTopic(ctx, topic) {
			if len(out) > 0 {
				return out, nil
			}
			return nil, fmt.Errorf("%w %s", wire.ErrUnknownTopic, topic)
		}
		req := &wire.GetRequest{Topic: topic, Max: uint32(max - len(out)), From: r.cfg.Self, ReqID: r.reqIDs.Add(1)}
		entries, more, err := r.Leader.Get(ctx, req)
		if err != nil {
			if len(out) > 0 {
				return out, nil // deliver what was handed out
			}
			return nil, err
		}
		out = append(out, entries...)
		if !more {
			break
		}
	}
	return out, nil
}

// ensureTopic creates topic unless it exists and waits until this node has
// applied it (so the caller can route to it).
func (r *Router) ensureTopic(ctx context.Context, topic string) error {
	if err := r.CheckNew(topic); err != nil {
		return err
	}
	if err := r.CreateTopic(ctx, topic, 0, -1); err != nil {
		return err
	}
	return r.waitFor(ctx, func() bool { _, ok := r.FSM.Route(topic); return ok })
}

// CheckNew refuses a topic name the text protocol must not create (a
// Kafka partition log's name, Deps.Reserved).
func (r *Router) CheckNew(topic string) error {
	if r.Reserved == nil {
		return nil
	}
	return r.Reserved(topic)
}

// CreateTopic creates topic unless it exists, with a replication factor
// and ack quorum (rf 0 and ack -1 take the configured defaults); it
// returns once the creation is committed.
func (r *Router) CreateTopic(ctx context.Context, topic string, rf, ack int) error {
	if _, ok := r.FSM.Route(topic); ok {
		return nil
	}
	return r.Leader.CreateTopic(ctx, topic, rf, ack)
}

// waitFor waits until cond holds, re-checking at every metadata change.
func (r *Router) waitFor(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, retry.RequestTimeout)
	defer cancel()
	for {
		changed := r.FSM.Changed()
		if cond() {
			return nil
		}
		select {
		case <-changed:
		case <-r.Stopping:
			return wire.ErrShuttingDown
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// fsmDrainWait bounds the wait for the FSM goroutine after a catch-up.
const fsmDrainWait = 250 * time.Millisecond

// KnownTopic reports whether topic exists, catching up with the Raft
// leader first when this node does not know it yet.
func (r *Router) KnownTopic(ctx context.Context, topic string) bool {
	if _, ok := r.FSM.Route(topic); ok {
		return true
	}
	if err := r.Leader.CatchUp(ctx); err != nil {
		return false
	}
	// raft's applied index counts entries handed to the FSM goroutine, not
	// yet necessarily applied: give it a moment to consume them.
	wctx, cancel := context.WithTimeout(ctx, fsmDrainWait)
	defer cancel()
	return r.waitFor(wctx, func() bool { _, ok := r.FSM.Route(topic); return ok }) == nil
}

// ErrReply renders an error for the client. Unknown topics use the
// original's wording.
func ErrReply(err error) protocol.Reply {
	var (
		nl *wire.NotLeaderError
		df *wire.DiskFullError
	)
	switch {
	case errors.As(err, &nl):
		return protocol.ErrReply(nl)
	case errors.As(err, &df): // exactly "ERR disk full on node <id>: ..."
		return protocol.ErrReply(df)
	case errors.Is(err, context.DeadlineExceeded):
		return protocol.Errf("timed out: %v", err)
	}
	return protocol.ErrReply(err)
}

// Puts appends a run of PUTs: one batch per topic, topics in parallel,
// entries of a topic in request order.
func (r *Router) Puts(ctx context.Context, reqs []protocol.Request, replies []protocol.Reply) {
	type group struct {
		topic string
		idx   []int
	}
	var groups []*group
	byTopic := map[string]*group{}
	for i, q := range reqs {
		g, ok := byTopic[q.Topic]
		if !ok {
			g = &group{topic: q.Topic}
			byTopic[q.Topic] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
	}
	run := func(g *group) {
		// No copy of the payloads: the server never reuses their memory
		// (server.Handler), so an append that outlives a timed-out request,
		// or a forwarded batch encoded later, still reads them intact.
		entries := make([][]byte, len(g.idx))
		for k, i := range g.idx {
			p := reqs[i].Payload
			entries[k] = p[:len(p):len(p)]
		}
		rep := protocol.OK()
		if err := r.Put(ctx, g.topic, entries); err != nil {
			rep = ErrReply(err)
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

// Gets serves a run of GETs on one topic with one cursor call.
func (r *Router) Gets(ctx context.Context, topic string, replies []protocol.Reply) {
	gctx, cancel := context.WithTimeout(ctx, retry.RequestTimeout)
	defer cancel()
	entries, err := r.Get(gctx, topic, len(replies))
	if err != nil {
		rep := ErrReply(err)
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

// Create serves "CREATE <topic> [rf=<n>] [ack=<n>]": REGISTER with a
// per-topic replication factor (1..7, capped at the live voters when a
// segment opens) and ack quorum (1..rf; default a majority of the set).
// An existing topic keeps its settings (idempotent OK, like REGISTER).
func (r *Router) Create(ctx context.Context, args []string) protocol.Reply {
	if len(args) < 1 || len(args) > 6 {
		return protocol.Errf("usage: CREATE <topic> [rf=<n>] [ack=<n>] [max_age_ms=<n>] [max_bytes=<n>] [max_entries=<n>]")
	}
	topic := args[0]
	if err := engine.ValidateTopic(topic); err != nil {
		return protocol.ErrReply(err)
	}
	rf, ack := 0, -1
	alter := metadata.AlterTopic{Topic: topic}
	for _, a := range args[1:] {
		if isRet, err := retentionArg(a, &alter); err != nil {
			return protocol.Errf("%v (usage: CREATE <topic> [rf=<n>] [ack=<n>] [max_age_ms=<n>] [max_bytes=<n>] [max_entries=<n>])", err)
		} else if isRet {
			continue
		}
		key, val, ok := strings.Cut(strings.ToLower(a), "=")
		v, err := strconv.Atoi(val)
		if !ok || err != nil {
			return protocol.Errf("invalid argument %q: want rf=<n>, ack=<n>, max_age_ms=<n>, max_bytes=<n> or max_entries=<n>", a)
		}
		switch key {
		case "rf":
			if v < 1 || v > placement.MaxReplicationFactor {
				return protocol.Errf("rf=%d: must be 1..%d", v, placement.MaxReplicationFactor)
			}
			rf = v
		case "ack":
			if v < 1 {
				return protocol.Errf("ack=%d: must be >= 1", v)
			}
			ack = v
		default:
			return protocol.Errf("invalid argument %q: want rf=<n>, ack=<n>, max_age_ms=<n>, max_bytes=<n> or max_entries=<n>", a)
		}
	}
	effRF := rf
	if effRF == 0 {
		effRF = r.cfg.ReplicationFactor
	}
	if ack > effRF {
		return protocol.Errf("ack=%d: must be <= rf (%d)", ack, effRF)
	}
	effAck := ack
	if effAck < 0 {
		effAck = r.cfg.AckQuorum
	}
	if err := placement.CheckReplication(effRF, effAck); err != nil {
		return protocol.ErrReply(err)
	}
	_, existed := r.FSM.Route(topic)
	if err := r.CheckNew(topic); err != nil && !existed {
		return protocol.ErrReply(err)
	}
	if err := r.CreateTopic(ctx, topic, rf, ack); err != nil {
		return ErrReply(err)
	}
	if existed || !alter.Any() {
		return protocol.OK() // an existing topic keeps its settings
	}
	// The limits given apply right after the creation (ALTER's command).
	return r.propose(ctx, alter)
}
