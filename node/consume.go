package node

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/metadata"
)

// Read bounds.
const (
	prefetchEntries = 512      // entries the cursor owner reads ahead per topic
	readMaxBytes    = 4 << 20  // bytes per segment read (RPC or local)
	maxGetBatch     = 4096     // entries per forwarded GET
	maxGetBytes     = 16 << 20 // payload bytes per GET call (fits an RPC frame)
)

// cursorSet holds the shared cursors while this node is the Raft leader
// (the cursor owner). It is reloaded from the committed metadata whenever
// the Raft term changes, after a barrier, so a new leader continues from the
// last committed positions.
type cursorSet struct {
	mu   sync.Mutex
	term uint64
	m    map[string]*topicCursor
}

func (s *cursorSet) init() { s.m = map[string]*topicCursor{} }

type topicCursor struct {
	mu sync.Mutex
	// pos is the next entry to hand out; buf holds prefetched entries
	// starting at pos.
	pos metadata.Cursor
	buf [][]byte
	// dirty: pos moved since the last cursor commit was proposed.
	dirty bool
}

func (n *Node) cursorFor(ctx context.Context, topic string) (*topicCursor, error) {
	term := n.cons.Raft().CurrentTerm()
	s := &n.cursors
	s.mu.Lock()
	if s.term != term {
		s.mu.Unlock()
		// Apply everything committed in earlier terms before trusting the
		// FSM's cursor positions.
		if err := n.cons.Barrier(ctx); err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.term != term {
			s.term = term
			s.m = map[string]*topicCursor{}
		}
	}
	defer s.mu.Unlock()
	if c, ok := s.m[topic]; ok {
		return c, nil
	}
	t, ok := n.fsm.Topic(topic)
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnknownTopic, topic)
	}
	c := &topicCursor{pos: t.Cursor}
	s.m[topic] = c
	return c, nil
}

// getLocal hands out up to max entries of topic through the shared cursor.
// This node must be the Raft leader. more is true when it stopped at the
// byte budget (entries may remain), false when it caught up or hit max.
func (n *Node) getLocal(ctx context.Context, topic string, max int) (out [][]byte, more bool, err error) {
	out, err = n.getLocalBounded(ctx, topic, max)
	return out, len(out) < max && totalBytes(out) >= maxGetBytes, err
}

func totalBytes(entries [][]byte) int {
	b := 0
	for _, e := range entries {
		b += len(e)
	}
	return b
}

func (n *Node) getLocalBounded(ctx context.Context, topic string, max int) ([][]byte, error) {
	if !n.cons.IsLeader() {
		return nil, fmt.Errorf("get %s: %w", topic, errRemoteNotRaftLeader)
	}
	c, err := n.cursorFor(ctx, topic)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]byte
	outBytes := 0
	// Each iteration either delivers, advances a segment or reads; the
	// bound only guards against a metadata bug looping forever.
	for iter := 0; len(out) < max && outBytes < maxGetBytes && iter < 1<<16; iter++ {
		if len(c.buf) > 0 {
			k := 0
			for k < len(c.buf) && len(out)+k < max && (k == 0 || outBytes+len(c.buf[k]) <= maxGetBytes) {
				outBytes += len(c.buf[k])
				k++
			}
			out = append(out, c.buf[:k]...)
			clear(c.buf[:k])
			c.buf = c.buf[k:]
			c.pos.Offset += uint64(k)
			c.dirty = true
			continue
		}
		holder, count, sealed, ok := n.fsm.SegmentInfo(topic, c.pos.Segment)
		if !ok {
			break
		}
		if sealed && c.pos.Offset >= count {
			c.pos = metadata.Cursor{Segment: c.pos.Segment + 1}
			c.dirty = true
			continue
		}
		want := uint64(prefetchEntries)
		if sealed {
			want = min(want, count-c.pos.Offset)
		}
		entries, err := n.readSegmentAny(ctx, holder, sealed, topic, c.pos.Segment, c.pos.Offset, int(want))
		if err != nil {
			if len(out) > 0 {
				break
			}
			// Not retried here: the holder may be down for long, and the
			// client should hear about it now rather than after a timeout.
			return nil, fmt.Errorf("read topic %s segment %d from node %d: %w: %v", topic, c.pos.Segment, holder, ErrSegmentUnavailable, err)
		}
		if len(entries) == 0 {
			if sealed {
				return out, fmt.Errorf("topic %s segment %d sealed at %d entries but node %d returned none at offset %d", topic, c.pos.Segment, count, holder, c.pos.Offset)
			}
			break // caught up with the open segment
		}
		c.buf = entries
	}
	return out, nil
}

// readSegment reads entries of one segment from the node that holds it.
func (n *Node) readSegment(ctx context.Context, holder uint64, topic string, seg, off uint64, max int) ([][]byte, error) {
	if holder == n.id {
		return n.readLocal(ctx, topic, seg, off, max)
	}
	var e enc
	e.str(topic)
	e.u64(seg)
	e.u64(off)
	e.u32(uint32(max))
	resp, err := n.call(ctx, holder, methodRead, e.b)
	n.m.ObserveForward("read", err)
	if err != nil {
		return nil, err
	}
	d := dec{b: resp}
	entries := d.list()
	return entries, d.done()
}

func (n *Node) readLocal(ctx context.Context, topic string, seg, off uint64, max int) ([][]byte, error) {
	if lim, ok := n.readLimit(topic, seg); ok {
		// Open replicated segment: only what the ack quorum holds.
		if off >= lim {
			return nil, nil
		}
		max = int(min(uint64(max), lim-off))
	}
	entries, err := n.store.Read(ctx, engine.SegmentID{Topic: topic, Segment: seg}, off, max, readMaxBytes)
	if errors.Is(err, engine.ErrNotFound) {
		return nil, nil // never written yet
	}
	if err != nil {
		return nil, err
	}
	b := 0
	for _, e := range entries {
		b += len(e)
	}
	n.m.ObserveRead(topic, len(entries), b)
	return entries, nil
}

// get hands out up to max entries from the topic's shared cursor, through
// the Raft leader, in as many calls as the byte budget needs.
func (n *Node) get(ctx context.Context, topic string, max int) ([][]byte, error) {
	var out [][]byte
	for len(out) < max {
		entries, more, err := n.getOnce(ctx, topic, max-len(out))
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

func (n *Node) getOnce(ctx context.Context, topic string, max int) ([][]byte, bool, error) {
	if !n.knownTopic(ctx, topic) {
		return nil, false, fmt.Errorf("%w %s", ErrUnknownTopic, topic)
	}
	var e enc
	e.str(topic)
	e.u32(uint32(max))
	var (
		local     [][]byte
		localMore bool
	)
	resp, err := n.onRaftLeader(ctx, "read", methodGet, e.b, func(ctx context.Context) ([]byte, error) {
		var err error
		local, localMore, err = n.getLocal(ctx, topic, max)
		return nil, err
	})
	if err != nil {
		return nil, false, err
	}
	if resp == nil {
		return local, localMore, nil
	}
	d := dec{b: resp}
	entries := d.list()
	more := false
	if len(d.b) > 0 {
		more = d.b[0] == 1
	}
	return entries, more, d.done()
}

// commitCursors proposes the dirty cursor positions in one command.
func (n *Node) commitCursors(ctx context.Context) {
	if n.cons == nil || !n.cons.IsLeader() {
		return
	}
	s := &n.cursors
	s.mu.Lock()
	var (
		cmd  metadata.CommitCursors
		took []*topicCursor
	)
	for topic, c := range s.m {
		c.mu.Lock()
		if c.dirty {
			cmd.Cursors = append(cmd.Cursors, metadata.CursorCommit{Topic: topic, Cursor: c.pos})
			c.dirty = false
			took = append(took, c)
		}
		c.mu.Unlock()
	}
	s.mu.Unlock()
	if len(cmd.Cursors) == 0 {
		return
	}
	res, err := n.cons.Propose(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		if !isNotRaftLeader(err) {
			n.logger.Error("Raft consensus failed", "op", "commit_cursors", "err", err)
		}
		for _, c := range took {
			c.mu.Lock()
			c.dirty = true
			c.mu.Unlock()
		}
	}
}

func (n *Node) cursorCommitLoop(ctx context.Context) {
	t := newTicker(n.cfg.CursorCommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.commitCursors(ctx)
		}
	}
}
