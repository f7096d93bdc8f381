package memstore

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/walrus-go/walrus/engine"
)

// Options configure a Store.
type Options struct {
	// Store carries the common settings; only Limits matter here (durability
	// has no meaning in memory).
	Store engine.Options
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultOptions returns a fresh Options value with the defaults.
func DefaultOptions() Options {
	return Options{Store: engine.DefaultOptions()}
}

// Store is an in-memory engine.SegmentStore.
type Store struct {
	limits engine.Limits
	logger *slog.Logger

	mu       sync.RWMutex // guards closed and segments (the map, not the segments)
	closed   bool
	segments map[engine.SegmentID]*segment
}

var _ engine.SegmentStore = (*Store)(nil)

type segment struct {
	mu      sync.RWMutex
	entries [][]byte
	bytes   uint64
	sealed  bool
	deleted bool // set under mu by Delete, so an Append racing a Delete fails cleanly
}

// New returns an empty store with the default limits.
func New() *Store {
	s, err := NewWithOptions(DefaultOptions())
	if err != nil {
		// DefaultOptions are valid by construction; failing here is a bug.
		panic(fmt.Sprintf("memstore: default options rejected: %v", err))
	}
	return s
}

// NewWithOptions returns an empty store with opts, after validating them.
func NewWithOptions(opts Options) (*Store, error) {
	if err := opts.Store.Validate(); err != nil {
		return nil, fmt.Errorf("memstore: options: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{
		limits:   opts.Store.Limits,
		logger:   logger.With("component", "memstore"),
		segments: make(map[engine.SegmentID]*segment),
	}, nil
}

// check runs the checks shared by every method: ctx, closed, topic name.
func (s *Store) check(ctx context.Context, op string, id engine.SegmentID) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %s %s: %w", op, id, err)
	}
	if err := id.Validate(); err != nil {
		return fmt.Errorf("memstore: %s: %w", op, err)
	}
	return nil
}

// lookup returns the segment or ErrNotFound / ErrClosed.
func (s *Store) lookup(op string, id engine.SegmentID) (*segment, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("memstore: %s %s: %w", op, id, engine.ErrClosed)
	}
	seg, ok := s.segments[id]
	if !ok {
		return nil, fmt.Errorf("memstore: %s %s: %w", op, id, engine.ErrNotFound)
	}
	return seg, nil
}

// Append implements engine.SegmentStore. The entries are copied, so the
// caller may reuse its buffers after the call.
func (s *Store) Append(ctx context.Context, id engine.SegmentID, entries [][]byte) (uint64, error) {
	if err := s.check(ctx, "append", id); err != nil {
		return 0, err
	}
	if err := s.limits.CheckBatch(entries); err != nil {
		return 0, fmt.Errorf("memstore: append %s: %w", id, err)
	}
	// Copy before taking any lock: one allocation for the whole batch.
	total := 0
	for _, e := range entries {
		total += len(e)
	}
	buf := make([]byte, 0, total)
	owned := make([][]byte, len(entries))
	for i, e := range entries {
		start := len(buf)
		buf = append(buf, e...)
		owned[i] = buf[start:len(buf):len(buf)]
	}
	for {
		seg, err := s.getOrCreate(id)
		if err != nil {
			return 0, err
		}
		seg.mu.Lock()
		if seg.deleted {
			// Delete won the race after we looked the segment up; the next
			// lookup creates a fresh one, as an Append after Delete would.
			seg.mu.Unlock()
			continue
		}
		if seg.sealed {
			seg.mu.Unlock()
			return 0, fmt.Errorf("memstore: append %s: %w", id, engine.ErrSealed)
		}
		first := uint64(len(seg.entries))
		seg.entries = append(seg.entries, owned...)
		seg.bytes += uint64(total)
		seg.mu.Unlock()
		return first, nil
	}
}

func (s *Store) getOrCreate(id engine.SegmentID) (*segment, error) {
	s.mu.RLock()
	seg, ok := s.segments[id]
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, fmt.Errorf("memstore: append %s: %w", id, engine.ErrClosed)
	}
	if ok {
		return seg, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("memstore: append %s: %w", id, engine.ErrClosed)
	}
	if seg, ok = s.segments[id]; !ok {
		seg = &segment{}
		s.segments[id] = seg
	}
	return seg, nil
}

// Read implements engine.SegmentStore. The returned slices are copies.
func (s *Store) Read(ctx context.Context, id engine.SegmentID, offset uint64, maxEntries, maxBytes int) ([][]byte, error) {
	if err := s.check(ctx, "read", id); err != nil {
		return nil, err
	}
	if err := engine.CheckReadBounds(maxEntries, maxBytes); err != nil {
		return nil, fmt.Errorf("memstore: read %s: %w", id, err)
	}
	seg, err := s.lookup("read", id)
	if err != nil {
		return nil, err
	}
	seg.mu.RLock()
	defer seg.mu.RUnlock()
	if seg.deleted {
		return nil, fmt.Errorf("memstore: read %s: %w", id, engine.ErrNotFound)
	}
	count := uint64(len(seg.entries))
	if offset > count {
		return nil, fmt.Errorf("memstore: read %s at %d (count %d): %w", id, offset, count, engine.ErrOutOfRange)
	}
	out := [][]byte{}
	size := 0
	for _, e := range seg.entries[offset:] {
		if len(out) == maxEntries || (len(out) > 0 && size+len(e) > maxBytes) {
			break
		}
		out = append(out, slices.Clone(e))
		size += len(e)
	}
	return out, nil
}

// Seal implements engine.SegmentStore.
func (s *Store) Seal(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	if err := s.check(ctx, "seal", id); err != nil {
		return engine.SegmentInfo{}, err
	}
	seg, err := s.lookup("seal", id)
	if err != nil {
		return engine.SegmentInfo{}, err
	}
	seg.mu.Lock()
	defer seg.mu.Unlock()
	if seg.deleted {
		return engine.SegmentInfo{}, fmt.Errorf("memstore: seal %s: %w", id, engine.ErrNotFound)
	}
	seg.sealed = true
	return seg.infoLocked(id), nil
}

func (seg *segment) infoLocked(id engine.SegmentID) engine.SegmentInfo {
	return engine.SegmentInfo{ID: id, Entries: uint64(len(seg.entries)), Bytes: seg.bytes, Sealed: seg.sealed}
}

// Stat implements engine.SegmentStore.
func (s *Store) Stat(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	if err := s.check(ctx, "stat", id); err != nil {
		return engine.SegmentInfo{}, err
	}
	seg, err := s.lookup("stat", id)
	if err != nil {
		return engine.SegmentInfo{}, err
	}
	seg.mu.RLock()
	defer seg.mu.RUnlock()
	if seg.deleted {
		return engine.SegmentInfo{}, fmt.Errorf("memstore: stat %s: %w", id, engine.ErrNotFound)
	}
	return seg.infoLocked(id), nil
}

// List implements engine.SegmentStore.
func (s *Store) List(ctx context.Context, topic string) ([]engine.SegmentInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: list %q: %w", topic, err)
	}
	if topic != "" {
		if err := engine.ValidateTopic(topic); err != nil {
			return nil, fmt.Errorf("memstore: list: %w", err)
		}
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, fmt.Errorf("memstore: list %q: %w", topic, engine.ErrClosed)
	}
	type pair struct {
		id  engine.SegmentID
		seg *segment
	}
	var picked []pair
	for id, seg := range s.segments {
		if topic == "" || id.Topic == topic {
			picked = append(picked, pair{id, seg})
		}
	}
	s.mu.RUnlock()
	out := make([]engine.SegmentInfo, 0, len(picked))
	for _, p := range picked {
		p.seg.mu.RLock()
		if !p.seg.deleted {
			out = append(out, p.seg.infoLocked(p.id))
		}
		p.seg.mu.RUnlock()
	}
	slices.SortFunc(out, func(a, b engine.SegmentInfo) int {
		return cmp.Or(cmp.Compare(a.ID.Topic, b.ID.Topic), cmp.Compare(a.ID.Segment, b.ID.Segment))
	})
	return out, nil
}

// Delete implements engine.SegmentStore.
func (s *Store) Delete(ctx context.Context, id engine.SegmentID) error {
	if err := s.check(ctx, "delete", id); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("memstore: delete %s: %w", id, engine.ErrClosed)
	}
	seg, ok := s.segments[id]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("memstore: delete %s: %w", id, engine.ErrNotFound)
	}
	delete(s.segments, id)
	s.mu.Unlock()
	seg.mu.Lock()
	seg.deleted = true
	seg.entries = nil
	seg.mu.Unlock()
	s.logger.Debug("segment deleted", "topic", id.Topic, "segment", id.Segment)
	return nil
}

// Sync implements engine.SegmentStore. There is nothing to flush.
func (s *Store) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: sync: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("memstore: sync: %w", engine.ErrClosed)
	}
	return nil
}

// Close implements engine.SegmentStore: it drops every segment. Calling it
// again is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.segments = nil
	return nil
}
