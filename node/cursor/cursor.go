// Package cursor owns the shared read cursors: one cluster-wide position
// per topic, kept on the Raft leader (the cursor owner), which walks
// sealed segments (read from any replica that holds them) and then the
// open one, hands each entry out once, and commits the positions through
// Raft every CursorCommitInterval. A new leader reloads them from the
// committed metadata after a barrier, so it continues from the last commit.
//
// Lock order: Cursors.commitMu → Cursors.mu → topicCursor.mu.
package cursor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/record"
	"github.com/walrus-go/walrus/node/retry"
	"github.com/walrus-go/walrus/node/wire"
)

// Read bounds.
const (
	prefetchEntries = 512      // entries the owner reads ahead per topic
	MaxGetBatch     = 4096     // entries per GET call
	maxGetBytes     = 16 << 20 // payload bytes per GET call (fits an RPC frame)
)

// Reader reads one segment from one node (a wire.Client, or this node's
// segment part).
type Reader interface {
	Read(ctx context.Context, topic string, seg, off uint64, max int) ([][]byte, error)
}

// Liveness judges whether a node is up.
type Liveness interface {
	Alive(id uint64) bool
}

// Deps are the parts the cursors use.
type Deps struct {
	Self    uint64
	Cons    *consensus.Consensus
	FSM     *metadata.FSM
	Peer    func(id uint64) Reader
	Live    Liveness
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// CommitInterval is how often dirty positions are committed.
	CommitInterval time.Duration
}

// Cursors holds the shared cursors while this node is the Raft leader.
type Cursors struct {
	Deps
	mu   sync.Mutex
	term uint64
	m    map[string]*topicCursor
	// answers keeps recent GETs' results for their retries.
	answers answers
	// commitMu serialises commits (taken before mu).
	commitMu sync.Mutex
	// dirty are the cursors moved since the last commit (dirtyMu is a
	// leaf lock), so a commit looks only at those; sweeps counts commits
	// between sweeps of idle cursors.
	dirtyMu sync.Mutex
	dirty   map[string]*topicCursor
	sweeps  int
}

// idleCursor: a cursor not used for this long (and committed) is dropped;
// the next GET rebuilds it from the committed position.
const idleCursor = time.Minute

// sweepEvery is how many commit rounds pass between sweeps for idle
// cursors and cursors of deleted topics.
const sweepEvery = 100

type topicCursor struct {
	mu sync.Mutex
	// pos is the next entry to hand out; buf holds prefetched entries
	// starting at pos.
	pos metadata.Cursor
	abs uint64 // topic-wide offset of pos
	inc uint64 // the topic's incarnation
	buf [][]byte
	// dirty: pos moved since the last cursor commit was proposed.
	dirty bool
	// used is when a GET last used the cursor (for the idle sweep);
	// dropped: the sweep removed it, a GET that still holds it starts over.
	used    time.Time
	dropped bool
}

// New builds the cursor part; Run runs its commit loop.
func New(d Deps) *Cursors {
	return &Cursors{Deps: d, m: map[string]*topicCursor{}, dirty: map[string]*topicCursor{}}
}

func (s *Cursors) cursorFor(ctx context.Context, topic string) (*topicCursor, error) {
	term := s.Cons.Raft().CurrentTerm()
	s.mu.Lock()
	if s.term != term {
		s.mu.Unlock()
		// Apply everything committed in earlier terms before trusting the
		// FSM's cursor positions.
		if err := s.Cons.Barrier(ctx); err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.term != term {
			s.term = term
			s.m = map[string]*topicCursor{}
			s.dirtyMu.Lock()
			s.dirty = map[string]*topicCursor{} // an earlier term's positions are not ours to commit
			s.dirtyMu.Unlock()
		}
	}
	defer s.mu.Unlock()
	var inc uint64
	exists := s.FSM.View(topic, func(t *metadata.Topic) { inc = t.Incarnation })
	if c, ok := s.m[topic]; ok && exists && c.inc == inc {
		return c, nil
	}
	// New, or its topic was deleted (and maybe created again): a cursor
	// never carries entries of a deleted topic over.
	delete(s.m, topic)
	t, ok := s.FSM.Topic(topic)
	if !ok {
		return nil, fmt.Errorf("%w %s", wire.ErrUnknownTopic, topic)
	}
	start, _ := t.SegmentStart(t.Cursor.Segment)
	c := &topicCursor{pos: t.Cursor, abs: start + t.Cursor.Offset, inc: t.Incarnation}
	s.m[topic] = c
	return c, nil
}

// Get hands out up to max entries of topic (this node must be the Raft
// leader). more is true when it stopped at the byte budget (entries may
// remain), false when it caught up or hit max.
// A request with an id is answered once: a retry of it (its reply was
// lost) gets the same entries.
func (s *Cursors) Get(ctx context.Context, req *wire.GetRequest) ([][]byte, bool, error) {
	limit := min(max(int(req.Max), 1), MaxGetBatch)
	get := func() ([][]byte, bool, error) {
		out, err := s.get(ctx, req.Topic, limit)
		return out, len(out) < limit && totalBytes(out) >= maxGetBytes, err
	}
	if req.ReqID == 0 {
		return get()
	}
	return s.answers.do(ctx, reqKey{req.From, req.ReqID}, get)
}

func totalBytes(entries [][]byte) int {
	b := 0
	for _, e := range entries {
		b += len(e)
	}
	return b
}

func (s *Cursors) get(ctx context.Context, topic string, max int) ([][]byte, error) {
	if !s.Cons.IsLeader() {
		return nil, fmt.Errorf("get %s: %w", topic, wire.ErrNotRaftLeader)
	}
	c, err := s.cursorFor(ctx, topic)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	for c.dropped {
		c.mu.Unlock()
		if c, err = s.cursorFor(ctx, topic); err != nil {
			return nil, err
		}
		c.mu.Lock()
	}
	defer func() {
		c.used = time.Now()
		if c.dirty {
			s.dirtyMu.Lock()
			s.dirty[topic] = c
			s.dirtyMu.Unlock()
		}
		c.mu.Unlock()
	}()
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
			c.abs += uint64(k)
			c.dirty = true
			continue
		}
		holder, count, sealed, ok := s.FSM.SegmentInfo(topic, c.pos.Segment)
		if !ok {
			var base, skipped uint64
			s.FSM.View(topic, func(t *metadata.Topic) {
				base = t.BaseSegment()
				if start, ok := t.SegmentStart(base); ok && c.pos.Segment < base {
					skipped = start - min(start, c.abs)
					if c.abs < start {
						c.abs = start
					}
				}
			})
			if c.pos.Segment >= base {
				break
			}
			s.Metrics.AddCursorSkipped(topic, skipped)
			// Retention deleted the segment under the cursor: go on from
			// the earliest entry left (the metadata counts the skip).
			s.Logger.Warn("shared cursor skipped entries deleted by retention", "topic", topic, "segment", c.pos.Segment, "now_at_segment", base, "skipped", skipped)
			c.pos, c.buf, c.dirty = metadata.Cursor{Segment: base}, nil, true
			continue
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
		entries, err := s.readAny(ctx, holder, sealed, topic, c.pos.Segment, c.pos.Offset, int(want))
		if err == nil {
			// The holder stores records; a GET hands out their payloads.
			entries, err = record.Payloads(entries, s.FSM.Timed(topic, c.pos.Segment))
		}
		if err != nil {
			if len(out) > 0 {
				break
			}
			// Not retried here: the holder may be down for long, and the
			// client should hear about it now rather than after a timeout.
			return nil, fmt.Errorf("read topic %s segment %d from node %d: %w: %v", topic, c.pos.Segment, holder, wire.ErrSegmentUnavailable, err)
		}
		if len(entries) == 0 {
			if sealed {
				err := fmt.Errorf("topic %s segment %d sealed at %d entries but node %d returned none at offset %d: %w", topic, c.pos.Segment, count, holder, c.pos.Offset, wire.ErrSegmentUnavailable)
				if len(out) > 0 {
					// Deliver what was handed out; the next GET reports it.
					s.Logger.Warn("shared cursor stopped short", "err", err)
					break
				}
				return nil, err
			}
			break // caught up with the open segment
		}
		c.buf = entries
	}
	return out, nil
}

// readAny reads a sealed segment from any replica that has the entries
// (this node first, then live members, then the others); an open segment
// is read from its leader.
func (s *Cursors) readAny(ctx context.Context, holder uint64, sealed bool, topic string, seg, off uint64, max int) ([][]byte, error) {
	if !sealed {
		return s.read(ctx, holder, topic, seg, off, max)
	}
	set, _, _ := s.FSM.SegmentReplicas(topic, seg)
	cands := make([]uint64, 0, len(set)+1)
	if slices.Contains(set, s.Self) {
		cands = append(cands, s.Self)
	}
	for _, live := range []bool{true, false} {
		for _, id := range set {
			if id != s.Self && s.Live.Alive(id) == live {
				cands = append(cands, id)
			}
		}
	}
	if !slices.Contains(cands, holder) {
		cands = append(cands, holder)
	}
	var errs []error
	for _, id := range cands {
		entries, err := s.read(ctx, id, topic, seg, off, max)
		if err == nil && len(entries) > 0 {
			return entries, nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", id, err))
		}
	}
	return nil, errors.Join(errs...)
}

func (s *Cursors) read(ctx context.Context, id uint64, topic string, seg, off uint64, max int) ([][]byte, error) {
	entries, err := s.Peer(id).Read(ctx, topic, seg, off, max)
	if id != s.Self {
		s.Metrics.ObserveForward("read", err)
	}
	return entries, err
}

// Commit proposes the dirty cursor positions in one command. Commits run
// one at a time, so a caller that finds nothing dirty knows the positions
// it cares about are committed (not merely in a proposal still in flight:
// a stopping node waits on exactly that).
func (s *Cursors) Commit(ctx context.Context) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if !s.Cons.IsLeader() {
		return fmt.Errorf("commit cursors: %w", wire.ErrNotRaftLeader)
	}
	s.sweep()
	s.dirtyMu.Lock()
	moved := s.dirty
	s.dirty = map[string]*topicCursor{}
	s.dirtyMu.Unlock()
	var (
		cmd  metadata.CommitCursors
		took []*topicCursor
	)
	for _, topic := range slices.Sorted(maps.Keys(moved)) {
		c := moved[topic]
		var inc uint64
		if !s.FSM.View(topic, func(t *metadata.Topic) { inc = t.Incarnation }) || inc != c.inc {
			continue // its topic was deleted: nothing to commit
		}
		c.mu.Lock()
		if c.dirty {
			cmd.Cursors = append(cmd.Cursors, metadata.CursorCommit{Topic: topic, Cursor: c.pos})
			c.dirty = false
			took = append(took, c)
		}
		c.mu.Unlock()
	}
	if len(cmd.Cursors) == 0 {
		return nil
	}
	res, err := s.Cons.Propose(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		if !wire.IsNotRaftLeader(err) {
			s.Logger.Error("Raft consensus failed", "op", "commit_cursors", "err", err)
		}
		for i, c := range took {
			c.mu.Lock()
			c.dirty = true
			c.mu.Unlock()
			s.dirtyMu.Lock()
			if _, newer := s.dirty[cmd.Cursors[i].Topic]; !newer {
				s.dirty[cmd.Cursors[i].Topic] = c
			}
			s.dirtyMu.Unlock()
		}
		return fmt.Errorf("commit cursors: %w", err)
	}
	return nil
}

// sweep, every sweepEvery commits, drops the cursors of deleted topics and
// the committed cursors no GET used for idleCursor (commitMu held).
func (s *Cursors) sweep() {
	if s.sweeps++; s.sweeps < sweepEvery {
		return
	}
	s.sweeps = 0
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, c := range s.m {
		var inc uint64
		if !s.FSM.View(topic, func(t *metadata.Topic) { inc = t.Incarnation }) || inc != c.inc {
			delete(s.m, topic)
			continue
		}
		if c.mu.TryLock() {
			if !c.dirty && time.Since(c.used) > idleCursor {
				delete(s.m, topic)
				c.dropped = true
			}
			c.mu.Unlock()
		}
	}
}

// Run commits dirty positions every CommitInterval until ctx ends.
func (s *Cursors) Run(ctx context.Context) {
	retry.Every(ctx, s.CommitInterval, func(ctx context.Context) { _ = s.Commit(ctx) })
}
