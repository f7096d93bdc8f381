package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/y"

	"github.com/walrus-go/walrus/engine"
)

// commitQueueLen is the capacity of the committer's request channel: how
// many appends can wait while the committer is busy with an fsync; they are
// all committed together in the next round.
const commitQueueLen = 256

// maxCommitGroup bounds how many requests one badger transaction packs, so
// a transaction's pending-writes map stays small.
const maxCommitGroup = 1024

// Store is a badger-backed engine.SegmentStore.
type Store struct {
	dir    string
	opts   Options
	limits engine.Limits
	logger *slog.Logger
	db     *badger.DB
	// maxTxnBytes is badger's per-transaction size limit (15% of the
	// memtable); batches estimated above it take the split path directly.
	maxTxnBytes int64

	commitCh chan *commitReq
	stop     chan struct{}
	wg       sync.WaitGroup // the committer, syncer and GC goroutines

	// mu is held shared by every operation for its whole duration and
	// exclusively by Close, so Close waits for in-flight calls.
	mu     sync.RWMutex
	closed bool

	segsMu sync.Mutex
	segs   map[engine.SegmentID]*segState

	// syncRuns and gcRuns count the ticks of the interval syncer and the
	// value-log GC loop (observability, and tests wait on them).
	syncRuns atomic.Uint64
	gcRuns   atomic.Uint64

	// afterSplitChunk, when set by a test, runs after each chunk of a split
	// append is committed; an error aborts the append there, as a crash
	// would, before the meta that makes the chunks visible is written.
	afterSplitChunk func(chunk int) error
	// commitFault, when set by a test, runs in the committer for each
	// request before it joins a transaction; an error fails that request
	// as a failed commit would.
	commitFault func(r *commitReq) error
}

var _ engine.SegmentStore = (*Store)(nil)

// segState is the writer's view of one segment.
//
// Appends are pipelined: an append reserves its offsets and queues its
// commit under mu, then releases mu and waits for the committer, so the
// next append of the same segment can queue behind it and both share one
// commit (one fsync in durability always). The committer applies queued
// requests in order and checks each against the committed meta, so if one
// fails every request queued behind it fails too and nothing is committed
// past a hole.
type segState struct {
	mu     sync.Mutex // serialises reservations, Seal and Delete of the segment
	loaded bool       // next was read from badger and is trustworthy
	exists bool       // committed, or reserved by a queued append
	// next is the meta after every reserved append; once inflight drains
	// with no failure it equals the committed meta.
	next     metaValue
	inflight sync.WaitGroup // queued appends not yet answered
	failed   atomic.Bool    // a queued append failed: next is wrong, reload
	dropped  bool           // removed from Store.segs by Delete: look it up again
}

// Open opens (creating if needed) the store in dir and recovers its state:
// badger replays its logs, and any delete interrupted by a crash is
// finished before Open returns.
func Open(dir string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("badgerstore: options: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "badgerstore")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("badgerstore: create %s: %w: %w", dir, engine.ErrUnavailable, err)
	}
	if err := removeEmptyMemtableWALs(dir, logger); err != nil {
		return nil, fmt.Errorf("badgerstore: open: %w", err)
	}
	bo := badger.DefaultOptions(dir).
		// always: badger fsyncs its value log and memtable WAL before a
		// commit returns; the committer packs concurrent appends into one
		// commit so they share that fsync. none/interval: no fsync on
		// commit; the data is in the page cache (badger writes through
		// mmap), which survives a process crash.
		WithSyncWrites(opts.Store.Durability == engine.DurabilityAlways).
		WithLogger(badgerLogger{logger}).
		WithMemTableSize(opts.MemTableSize).
		WithNumMemtables(opts.NumMemtables).
		WithValueThreshold(opts.ValueThreshold).
		WithValueLogFileSize(opts.ValueLogFileSize).
		WithBlockCacheSize(opts.BlockCacheSize).
		WithIndexCacheSize(opts.IndexCacheSize).
		WithNumCompactors(opts.NumCompactors).
		// Writers of one segment are serialised by the store and nothing
		// reads inside a write transaction, so conflict tracking is waste.
		WithDetectConflicts(false).
		// Badger's metrics are process-global expvars; the node exports its
		// own.
		WithMetricsEnabled(false).
		// Never return a torn or flipped value as data.
		WithVerifyValueChecksum(true).
		WithChecksumVerificationMode(options.OnBlockRead)
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: open %s: %w: %w", dir, engine.ErrUnavailable, err)
	}
	s := &Store{
		dir:         dir,
		opts:        opts,
		limits:      opts.Store.Limits,
		logger:      logger,
		db:          db,
		maxTxnBytes: opts.MemTableSize * 15 / 100,
		commitCh:    make(chan *commitReq, commitQueueLen),
		stop:        make(chan struct{}),
		segs:        make(map[engine.SegmentID]*segState),
	}
	if err := s.recover(); err != nil {
		_ = db.Close() // the recovery error is the one worth returning
		return nil, err
	}
	s.wg.Add(1)
	go s.runCommitter()
	if opts.Store.Durability == engine.DurabilityInterval {
		s.wg.Add(1)
		go s.runSyncer(opts.Store.SyncInterval)
	}
	if opts.ValueLogGCInterval > 0 {
		s.wg.Add(1)
		go s.runValueLogGC(opts.ValueLogGCInterval, opts.ValueLogGCDiscardRatio)
	}
	logger.Info("badger store opened", "dir", dir, "durability", string(opts.Store.Durability))
	return s, nil
}

// recover checks the layout version and finishes interrupted deletes.
func (s *Store) recover() error {
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(formatKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(formatKey, []byte(formatVersion))
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if string(v) != formatVersion {
				return fmt.Errorf("directory holds layout %q, this build reads %q: %w", v, formatVersion, engine.ErrCorrupt)
			}
			return nil
		})
	})
	if err != nil {
		return s.fail("open", engine.SegmentID{}, err)
	}
	var pending []engine.SegmentID
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{kindDeleting}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			_, id, err := parseSegmentKey(it.Item().Key())
			if err != nil {
				return err
			}
			pending = append(pending, id)
		}
		return nil
	})
	if err != nil {
		return s.fail("open", engine.SegmentID{}, err)
	}
	for _, id := range pending {
		s.logger.Info("finishing interrupted delete", "topic", id.Topic, "segment", id.Segment)
		if err := s.dropEntries(id); err != nil {
			return s.fail("open: finish delete of "+id.String(), id, err)
		}
	}
	return nil
}

// fail wraps err for op: errors that already carry an engine sentinel (or a
// ctx error) keep it, badger's checksum errors become ErrCorrupt, anything
// else from badger (I/O, disk full) is ErrUnavailable.
func (s *Store) fail(op string, id engine.SegmentID, err error) error {
	what := op
	if id.Topic != "" {
		what = op + " " + id.String()
	}
	for _, known := range []error{
		engine.ErrNotFound, engine.ErrSealed, engine.ErrClosed, engine.ErrCorrupt, engine.ErrOutOfRange,
		engine.ErrUnavailable, engine.ErrInvalidName, engine.ErrInvalidArgument, context.Canceled, context.DeadlineExceeded,
	} {
		if errors.Is(err, known) {
			return fmt.Errorf("badgerstore: %s: %w", what, err)
		}
	}
	// badger wraps with %+v rather than %w outside its debug mode
	// (y.Wrap), so errors.Is cannot see its checksum error through the
	// wrapping; the message is all that survives.
	if errors.Is(err, y.ErrChecksumMismatch) || strings.Contains(err.Error(), y.ErrChecksumMismatch.Error()) {
		return fmt.Errorf("badgerstore: %s: %w: %w", what, engine.ErrCorrupt, err)
	}
	return fmt.Errorf("badgerstore: %s: %w: %w", what, engine.ErrUnavailable, err)
}

// enter runs the checks every method shares and, on success, returns with
// s.mu held shared; the caller must RUnlock it.
// With checkID false, id is ignored (Sync, List).
func (s *Store) enter(ctx context.Context, op string, id engine.SegmentID, checkID bool) error {
	what := op
	if checkID {
		what = op + " " + id.String()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("badgerstore: %s: %w", what, err)
	}
	if checkID {
		if err := id.Validate(); err != nil {
			return fmt.Errorf("badgerstore: %s: %w", op, err)
		}
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("badgerstore: %s: %w", what, engine.ErrClosed)
	}
	return nil
}

// lockSegment returns the writer state of id, locked and loaded. With
// settle, it also waits until no append of the segment is in flight, so
// next is the committed meta (Seal, Delete and split appends need that).
// A delete of id interrupted earlier is finished first, so a re-created
// segment never shares keys with its predecessor.
func (s *Store) lockSegment(id engine.SegmentID, settle bool) (*segState, error) {
	for {
		s.segsMu.Lock()
		st, ok := s.segs[id]
		if !ok {
			st = &segState{}
			s.segs[id] = st
		}
		s.segsMu.Unlock()
		st.mu.Lock()
		if st.dropped {
			st.mu.Unlock()
			continue
		}
		if settle || st.failed.Load() {
			// No new reservation can start while we hold mu.
			st.inflight.Wait()
			if st.failed.Swap(false) {
				st.loaded = false
			}
		}
		if !st.loaded {
			st.inflight.Wait() // reload only what is committed
			if err := s.loadSegment(id, st); err != nil {
				st.mu.Unlock()
				return nil, err
			}
		}
		return st, nil
	}
}

func (s *Store) loadSegment(id engine.SegmentID, st *segState) error {
	var deleting bool
	err := s.db.View(func(txn *badger.Txn) error {
		m, err := getMeta(txn, id)
		switch {
		case err == nil:
			st.exists, st.next = true, m
		case errors.Is(err, engine.ErrNotFound):
			st.exists, st.next = false, metaValue{}
		default:
			return err
		}
		_, err = txn.Get(deletingKey(id))
		if err == nil {
			deleting = true
			return nil
		}
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		return err
	})
	if err == nil && deleting {
		err = s.dropEntries(id)
	}
	if err != nil {
		return s.fail("load", id, err)
	}
	st.loaded = true
	return nil
}

// getMeta reads the committed meta of id inside txn.
func getMeta(txn *badger.Txn, id engine.SegmentID) (metaValue, error) {
	item, err := txn.Get(metaKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return metaValue{}, engine.ErrNotFound
	}
	if err != nil {
		return metaValue{}, err
	}
	var m metaValue
	err = item.Value(func(v []byte) error {
		m, err = decodeMeta(v)
		return err
	})
	return m, err
}

func (m metaValue) info(id engine.SegmentID) engine.SegmentInfo {
	return engine.SegmentInfo{ID: id, Entries: m.Entries, Bytes: m.Bytes, Sealed: m.Sealed}
}

// Close stops the store's goroutines and closes badger, which flushes its
// memtables. It waits for in-flight calls; calling it again is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("badgerstore: close %s: %w: %w", s.dir, engine.ErrUnavailable, err)
	}
	s.logger.Info("badger store closed", "dir", s.dir)
	return nil
}
