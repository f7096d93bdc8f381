// Package group owns the consumer groups: per group and topic, a committed
// offset (stored through Raft, in batches) and the entries leased to READs
// and not yet acknowledged. The coordinator is the Raft leader: other
// nodes relay group commands to it. A new coordinator starts every group
// from its committed offset, so everything above it may be delivered
// again and nothing below it is (at-least-once).
//
// Lock order: Coordinator.commitMu → Coordinator.mu → state.mu.
package group

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/record"
	"github.com/walrus-go/walrus/node/retry"
	"github.com/walrus-go/walrus/node/status"
	"github.com/walrus-go/walrus/node/wire"
)

// Log is what the coordinator reads (package topiclog).
type Log interface {
	Offsets(ctx context.Context, topic string) (earliest, latest uint64, err error)
	Fetch(ctx context.Context, topic string, off uint64, limit, maxBytes int) ([]record.Entry, uint64, error)
}

// Meter records the groups' series (package metrics).
type Meter interface {
	SetGroup(group, topic string, lag, pending uint64)
	DeleteGroup(group, topic string)
	AddRedeliveries(group, topic string, n int)
	AddSkipped(group, topic string, n uint64)
}

// Deps are the parts the coordinator uses.
type Deps struct {
	Cons   *consensus.Consensus
	FSM    *metadata.FSM
	Log    Log
	Meter  Meter
	Logger *slog.Logger
	// CommitInterval is how often moved offsets are committed.
	CommitInterval time.Duration
}

// Bounds.
const (
	// MaxPending bounds the window of one group on one topic: the entries
	// from its committed offset to the furthest one delivered. A READ
	// finds nothing new once it is full (JetStream's max_ack_pending).
	MaxPending = 1 << 16
	// readBytes bounds the payload of one READ.
	readBytes = 1 << 20
	// idleAfter evicts a group's in-memory state (not its commit) after
	// this long without a command, once nothing is pending.
	idleAfter = 10 * time.Minute
	// meterInterval is how often lag and pending are refreshed.
	meterInterval = 5 * time.Second
)

type key struct{ group, topic string }

// slot is one delivered entry of a window.
type slot struct {
	deadline   int64 // unix ns the lease ends; 0 once acked
	deliveries uint32
	acked      bool
}

// state is one group on one topic.
type state struct {
	mu sync.Mutex
	// base is the committed offset (the first unacked one); win[i] is the
	// entry at base+i. committed: base was set by a COMMIT or an ACK (or
	// loaded from Raft), so COMMITTED reports it instead of -1.
	base      uint64
	committed bool
	win       []slot
	pending   uint64
	// minDeadline is a lower bound of the unacked leases' ends (0: none).
	minDeadline int64
	dirty       bool
	used        time.Time
	// inc is the topic's incarnation: a topic deleted and created again
	// starts its groups afresh.
	inc uint64
}

// Coordinator holds the groups while this node is the Raft leader.
type Coordinator struct {
	Deps
	commitMu sync.Mutex
	mu       sync.Mutex
	term     uint64
	m        map[key]*state
}

// New builds the coordinator; Run runs its commit loop.
func New(d Deps) *Coordinator {
	if d.Meter == nil {
		d.Meter = nopMeter{}
	}
	return &Coordinator{Deps: d, m: map[key]*state{}}
}

type nopMeter struct{}

func (nopMeter) SetGroup(string, string, uint64, uint64) {}
func (nopMeter) DeleteGroup(string, string)              {}
func (nopMeter) AddRedeliveries(string, string, int)     {}
func (nopMeter) AddSkipped(string, string, uint64)       {}

// Handle runs one group command and returns the client's reply.
func (c *Coordinator) Handle(ctx context.Context, req *wire.GroupRequest) (*wire.GroupReply, error) {
	if !c.Cons.IsLeader() {
		return nil, fmt.Errorf("group %s: %w", req.Group, wire.ErrNotRaftLeader)
	}
	if req.Op == wire.GroupList {
		return c.list(ctx, req.Topic)
	}
	if _, ok := c.FSM.Route(req.Topic); !ok {
		return nil, fmt.Errorf("%w %s", wire.ErrUnknownTopic, req.Topic)
	}
	s, err := c.stateFor(ctx, req.Group, req.Topic)
	if err != nil {
		return nil, err
	}
	switch req.Op {
	case wire.GroupRead:
		return c.read(ctx, s, req)
	case wire.GroupAck:
		return c.ack(s, req)
	case wire.GroupCommit:
		return c.commitOne(ctx, s, req)
	case wire.GroupCommitted:
		return c.committed(ctx, s, req)
	case wire.GroupDelete:
		return c.deleteOne(ctx, req)
	}
	return nil, fmt.Errorf("group: unknown operation %d", req.Op)
}

func reply(r protocol.Reply) *wire.GroupReply {
	return &wire.GroupReply{Kind: byte(r.Kind), Body: r.Body}
}

// syncTerm starts a new term's view: after a barrier (so the FSM holds
// every earlier commit) it drops the states of an earlier term. It
// returns with c.mu held.
func (c *Coordinator) syncTerm(ctx context.Context) error {
	term := c.Cons.Raft().CurrentTerm()
	c.mu.Lock()
	if c.term == term {
		return nil
	}
	c.mu.Unlock()
	if err := c.Cons.Barrier(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	if c.term != term {
		c.term = term
		c.m = map[key]*state{}
	}
	return nil
}

// stateFor returns the state of a group, loading its committed offset.
func (c *Coordinator) stateFor(ctx context.Context, group, topic string) (*state, error) {
	if err := c.syncTerm(ctx); err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	var inc uint64
	c.FSM.View(topic, func(t *metadata.Topic) { inc = t.Incarnation })
	k := key{group, topic}
	s, ok := c.m[k]
	if !ok || s.inc != inc {
		s = &state{inc: inc}
		s.base, s.committed = c.FSM.GroupOffset(topic, group)
		c.m[k] = s
	}
	s.used = time.Now()
	return s, nil
}

func (c *Coordinator) read(ctx context.Context, s *state, req *wire.GroupRequest) (*wire.GroupReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.skipDeleted(s, req.Group, req.Topic)
	if !s.committed && len(s.win) == 0 {
		// A new group starts at the earliest retained entry.
		earliest, _, err := c.Log.Offsets(ctx, req.Topic)
		if err != nil {
			return nil, err
		}
		s.base = max(s.base, earliest)
	}
	now := time.Now().UnixNano()
	deadline := now + int64(time.Duration(req.AckWaitMs)*time.Millisecond)
	limit := int(req.Max)
	var out []record.Entry
	// Expired leases first, in offset order.
	if s.minDeadline != 0 && now >= s.minDeadline {
		redo, err := c.redeliver(ctx, s, req.Topic, now, deadline, limit)
		if err != nil {
			return nil, err
		}
		out = redo
		if n := len(out); n > 0 {
			c.Meter.AddRedeliveries(req.Group, req.Topic, n)
		}
	}
	if room := min(limit-len(out), MaxPending-len(s.win)); room > 0 {
		from := s.base + uint64(len(s.win))
		fresh, _, err := c.Log.Fetch(ctx, req.Topic, from, room, readBytes)
		if err != nil && len(out) == 0 {
			return nil, err
		}
		for _, e := range fresh {
			s.win = append(s.win, slot{deadline: deadline, deliveries: 1})
			e.Deliveries = 1
			out = append(out, e)
		}
		s.pending += uint64(len(fresh))
		if len(fresh) > 0 && (s.minDeadline == 0 || deadline < s.minDeadline) {
			s.minDeadline = deadline
		}
	}
	if len(out) == 0 {
		return reply(protocol.Empty()), nil
	}
	return reply(protocol.Raw(protocol.ReadJSON(make([]byte, 0, protocol.EntriesJSONSize(out)), req.Group, req.Topic, out))), nil
}

// skipDeleted moves a group whose position retention deleted to the
// earliest entry left, dropping the leases of deleted entries.
func (c *Coordinator) skipDeleted(s *state, group, topic string) {
	var earliest uint64
	c.FSM.View(topic, func(t *metadata.Topic) { earliest = t.Earliest })
	if s.base >= earliest {
		return
	}
	k := earliest - s.base
	drop := s.win[:min(k, uint64(len(s.win)))]
	for _, sl := range drop {
		if !sl.acked {
			s.pending--
		}
	}
	s.win = append(s.win[:0], s.win[len(drop):]...)
	s.base, s.dirty = earliest, s.committed
	c.Meter.AddSkipped(group, topic, k)
	c.Logger.Warn("consumer group skipped entries deleted by retention", "group", group, "topic", topic, "skipped", k, "now_at", earliest)
}

// redeliver leases again up to limit entries whose lease ended, and
// recomputes the earliest lease end of the rest.
func (c *Coordinator) redeliver(ctx context.Context, s *state, topic string, now, deadline int64, limit int) ([]record.Entry, error) {
	var out []record.Entry
	next := int64(0)
	for i := 0; i < len(s.win); i++ {
		sl := &s.win[i]
		if sl.acked {
			continue
		}
		if sl.deadline > now || len(out) >= limit {
			if next == 0 || sl.deadline < next {
				next = sl.deadline
			}
			continue
		}
		// A run of expired entries is read in one fetch.
		j := i
		for j < len(s.win) && j-i < limit-len(out) && !s.win[j].acked && s.win[j].deadline <= now {
			j++
		}
		entries, _, err := c.Log.Fetch(ctx, topic, s.base+uint64(i), j-i, readBytes)
		if err != nil {
			if len(out) > 0 {
				break
			}
			return nil, err
		}
		for k, e := range entries {
			w := &s.win[i+k]
			w.deadline = deadline
			w.deliveries++
			e.Deliveries = w.deliveries
			out = append(out, e)
		}
		if len(entries) > 0 && (next == 0 || deadline < next) {
			next = deadline
		}
		i += max(len(entries), 1) - 1
	}
	s.minDeadline = next
	return out, nil
}

func (c *Coordinator) ack(s *state, req *wire.GroupRequest) (*wire.GroupReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := s.base + uint64(len(s.win))
	for _, o := range req.Offsets {
		if o >= end {
			return reply(protocol.Errf("offset %d was never delivered to group %s on topic %s (delivered up to %d)", o, req.Group, req.Topic, end)), nil
		}
	}
	for _, o := range req.Offsets {
		if o < s.base {
			continue // committed already
		}
		sl := &s.win[o-s.base]
		if !sl.acked {
			sl.acked, sl.deadline = true, 0
			s.pending--
		}
	}
	k := 0
	for k < len(s.win) && s.win[k].acked {
		k++
	}
	if k > 0 {
		s.win = append(s.win[:0], s.win[k:]...)
		s.base += uint64(k)
		s.committed, s.dirty = true, true
	}
	return reply(protocol.OK()), nil
}

// commitOne places a group (COMMIT) and answers once Raft holds it.
func (c *Coordinator) commitOne(ctx context.Context, s *state, req *wire.GroupRequest) (*wire.GroupReply, error) {
	if len(req.Offsets) != 1 {
		return nil, fmt.Errorf("group commit: want one offset, got %d", len(req.Offsets))
	}
	off := req.Offsets[0]
	earliest, latest, err := c.Log.Offsets(ctx, req.Topic)
	if err != nil {
		return nil, err
	}
	if off < earliest || off > latest {
		return reply(protocol.Errf("offset out of range (earliest %d, latest %d)", earliest, latest)), nil
	}
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	s.mu.Lock()
	s.base, s.committed, s.win, s.pending, s.minDeadline, s.dirty = off, true, nil, 0, 0, false
	s.mu.Unlock()
	if err := c.propose(ctx, metadata.CommitGroups{Commits: []metadata.GroupCommit{{Group: req.Group, Topic: req.Topic, Offset: off}}}); err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return nil, err
	}
	return reply(protocol.OK()), nil
}

// deleteOne forgets a group's offset and its window in one topic: the
// group starts again from the earliest entry, as if it never committed.
func (c *Coordinator) deleteOne(ctx context.Context, req *wire.GroupRequest) (*wire.GroupReply, error) {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.drop(key{req.Group, req.Topic})
	if err := c.propose(ctx, metadata.CommitGroups{Commits: []metadata.GroupCommit{{Group: req.Group, Topic: req.Topic, Delete: true}}}); err != nil {
		return nil, err
	}
	return reply(protocol.OK()), nil
}

func (c *Coordinator) committed(ctx context.Context, s *state, req *wire.GroupRequest) (*wire.GroupReply, error) {
	earliest, latest, err := c.Log.Offsets(ctx, req.Topic)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	c.skipDeleted(s, req.Group, req.Topic)
	doc := status.Committed{Group: req.Group, Topic: req.Topic, Offset: -1, Lag: latest - earliest, Skipped: c.FSM.Skipped(req.Topic, req.Group)}
	if s.committed {
		doc.Offset, doc.Lag = int64(s.base), lag(latest, s.base)
	}
	s.mu.Unlock()
	return jsonReply(doc)
}

func lag(latest, base uint64) uint64 {
	if latest > base {
		return latest - base
	}
	return 0
}

// list answers GROUPS: every group that committed or read, sorted by
// topic then group.
func (c *Coordinator) list(ctx context.Context, topic string) (*wire.GroupReply, error) {
	if topic != "" {
		if _, ok := c.FSM.Route(topic); !ok {
			return nil, fmt.Errorf("%w %s", wire.ErrUnknownTopic, topic)
		}
	}
	if err := c.syncTerm(ctx); err != nil {
		return nil, err
	}
	docs := map[key]*status.Group{}
	for _, gc := range c.FSM.Groups(topic) {
		docs[key{gc.Group, gc.Topic}] = &status.Group{Group: gc.Group, Topic: gc.Topic, Offset: int64(gc.Offset), Skipped: c.FSM.Skipped(gc.Topic, gc.Group)}
	}
	for k, s := range c.m {
		if topic != "" && k.topic != topic {
			continue
		}
		var inc uint64
		if !c.FSM.View(k.topic, func(t *metadata.Topic) { inc = t.Incarnation }) || inc != s.inc {
			continue // its topic was deleted
		}
		s.mu.Lock()
		if s.committed || len(s.win) > 0 {
			d := &status.Group{Group: k.group, Topic: k.topic, Offset: -1, Pending: s.pending, Skipped: c.FSM.Skipped(k.topic, k.group)}
			if s.committed {
				d.Offset = int64(s.base)
			}
			docs[k] = d
		}
		s.mu.Unlock()
	}
	c.mu.Unlock()
	out := make([]status.Group, 0, len(docs))
	latest := map[string][2]uint64{}
	for k, d := range docs {
		r, ok := latest[k.topic]
		if !ok {
			e, l, err := c.Log.Offsets(ctx, k.topic)
			if err != nil {
				return nil, err
			}
			r = [2]uint64{e, l}
			latest[k.topic] = r
		}
		if d.Offset < 0 {
			d.Lag = r[1] - r[0]
		} else {
			d.Lag = lag(r[1], uint64(d.Offset))
		}
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Group < out[j].Group
	})
	return jsonReply(out)
}

// Commit proposes the moved offsets in one command (serialised with
// COMMITs, so the last offset proposed for a group is its latest).
func (c *Coordinator) Commit(ctx context.Context) error {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	if !c.Cons.IsLeader() {
		return fmt.Errorf("commit groups: %w", wire.ErrNotRaftLeader)
	}
	var (
		cmd  metadata.CommitGroups
		took []*state
	)
	c.mu.Lock()
	for k, s := range c.m {
		s.mu.Lock()
		if s.dirty {
			cmd.Commits = append(cmd.Commits, metadata.GroupCommit{Group: k.group, Topic: k.topic, Offset: s.base})
			s.dirty = false
			took = append(took, s)
		}
		s.mu.Unlock()
	}
	c.mu.Unlock()
	if len(cmd.Commits) == 0 {
		return nil
	}
	if err := c.propose(ctx, cmd); err != nil {
		for _, s := range took {
			s.mu.Lock()
			s.dirty = true
			s.mu.Unlock()
		}
		return err
	}
	return nil
}

func (c *Coordinator) propose(ctx context.Context, cmd metadata.CommitGroups) error {
	res, err := c.Cons.Propose(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		if !wire.IsNotRaftLeader(err) {
			c.Logger.Error("Raft consensus failed", "op", "commit_groups", "err", err)
		}
		return fmt.Errorf("commit groups: %w", err)
	}
	return nil
}

// Run commits moved offsets every CommitInterval and refreshes the
// groups' series and evicts idle ones every few seconds, until ctx ends.
func (c *Coordinator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		retry.Every(ctx, meterInterval, c.tend)
	}()
	retry.Every(ctx, c.CommitInterval, func(ctx context.Context) { _ = c.Commit(ctx) })
	wg.Wait()
	c.forgetAll()
}

// tend refreshes lag and pending of the groups held here, drops the state
// of groups idle for long (their offsets stay committed) and of topics
// that are gone, and drops everything when this node is not the leader.
func (c *Coordinator) tend(ctx context.Context) {
	if !c.Cons.IsLeader() {
		c.forgetAll()
		return
	}
	c.mu.Lock()
	keys := make([]key, 0, len(c.m))
	for k := range c.m {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	latest := map[string]uint64{}
	for _, k := range keys {
		if _, ok := c.FSM.Route(k.topic); !ok {
			c.drop(k)
			continue
		}
		c.mu.Lock()
		s := c.m[k]
		c.mu.Unlock()
		if s == nil {
			continue
		}
		s.mu.Lock()
		idle := time.Since(s.used) > idleAfter && s.pending == 0 && !s.dirty
		base, committed, pending := s.base, s.committed, s.pending
		s.mu.Unlock()
		if idle {
			c.drop(k)
			continue
		}
		l, ok := latest[k.topic]
		if !ok {
			_, lt, err := c.Log.Offsets(ctx, k.topic)
			if err != nil {
				continue
			}
			l, latest[k.topic] = lt, lt
		}
		if !committed {
			c.FSM.View(k.topic, func(t *metadata.Topic) { base = t.Earliest })
		}
		c.Meter.SetGroup(k.group, k.topic, lag(l, base), pending)
	}
}

func (c *Coordinator) drop(k key) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
	c.Meter.DeleteGroup(k.group, k.topic)
}

func (c *Coordinator) forgetAll() {
	c.mu.Lock()
	old := c.m
	c.m = map[key]*state{}
	c.term = 0
	c.mu.Unlock()
	for k := range old {
		c.Meter.DeleteGroup(k.group, k.topic)
	}
}
