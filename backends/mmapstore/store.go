package mmapstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/walrus-go/walrus/engine"
)

// Store is the memory-mapped SegmentStore. It is safe for concurrent use.
// Exported methods look a segment up under the store lock and then work
// under the segment's own locks, so different segments never contend
// beyond the map lookup.
type Store struct {
	dir       string
	topicsDir string
	env       *env
	log       *slog.Logger
	lock      *os.File
	syncer    *syncer

	mu       sync.RWMutex
	segs     map[engine.SegmentID]*segment
	creating map[engine.SegmentID]chan struct{} // closed when that creation ends
	closed   bool
}

var _ engine.SegmentStore = (*Store)(nil)

// Open opens (creating if needed) the store in dir, recovering every
// segment found there (see recovery.go and README.md). dir is normally
// <data_dir>/node_<id>/user_data/data_plane/. The directory is locked
// against a second Store, in this or another process, until Close.
func Open(dir string, opts Options) (*Store, error) {
	return open(dir, opts, fdatasync)
}

// open is Open with the fsync function as a seam for fault-injection tests.
func open(dir string, opts Options, syncFile func(*os.File) error) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("mmapstore: options: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("component", "mmapstore")
	topicsDir := filepath.Join(dir, topicsDirName)
	if err := os.MkdirAll(topicsDir, 0o755); err != nil {
		return nil, fmt.Errorf("mmapstore: open %s: %w: %w", dir, err, engine.ErrUnavailable)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("mmapstore: open %s: %w: %w", dir, err, engine.ErrUnavailable)
	}
	e := &env{
		opts:     opts,
		log:      log,
		mapped:   newMappedSet(opts.MaxMappedSegments),
		open:     newOpenSet(opts.MaxOpenSegments),
		durable:  opts.Store.Durability != engine.DurabilityNone,
		always:   opts.Store.Durability == engine.DurabilityAlways,
		syncFile: syncFile,
		syncFS:   syncfs,
	}
	e.wbufs.New = func() any {
		b := make([]byte, pwriteBufBytes)
		return &b
	}
	segs, err := recoverAll(e, topicsDir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("mmapstore: recover %s: %w: %w", dir, err, engine.ErrUnavailable)
	}
	var interval = opts.Store.SyncInterval
	if opts.Store.Durability != engine.DurabilityInterval {
		interval = 0
	}
	s := &Store{dir: dir, topicsDir: topicsDir, env: e, log: log, lock: lock, segs: segs, creating: map[engine.SegmentID]chan struct{}{}, syncer: newSyncer(log, interval)}
	log.Info("store opened", "dir", dir, "segments", len(segs), "durability", string(opts.Store.Durability))
	return s, nil
}

// lookup returns the segment for id, or the error for a missing one:
// ErrClosed, ErrInvalidName (checked only on a miss: every stored name
// passed validation) or ErrNotFound.
func (s *Store) lookup(id engine.SegmentID) (*segment, error) {
	s.mu.RLock()
	sg, closed := s.segs[id], s.closed
	s.mu.RUnlock()
	switch {
	case closed:
		return nil, engine.ErrClosed
	case sg != nil:
		return sg, nil
	}
	if err := engine.ValidateTopic(id.Topic); err != nil {
		return nil, err
	}
	return nil, engine.ErrNotFound
}

// lookupOrCreate returns the segment for id, creating its file if needed.
// The file is created outside the store lock (creation fsyncs in the
// durable modes), so other segments are not held up; concurrent appenders
// to the same new segment wait for the one creating it.
func (s *Store) lookupOrCreate(id engine.SegmentID) (*segment, error) {
	for {
		sg, err := s.lookup(id)
		if !errors.Is(err, engine.ErrNotFound) {
			return sg, err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, engine.ErrClosed
		}
		if sg := s.segs[id]; sg != nil {
			s.mu.Unlock()
			return sg, nil
		}
		if wait, busy := s.creating[id]; busy {
			s.mu.Unlock()
			<-wait
			continue
		}
		done := make(chan struct{})
		s.creating[id] = done
		s.mu.Unlock()

		sg, err = createSegment(s.env, s.topicsDir, id)

		// The segment appears in segs and the creation ends in one
		// critical section: a Delete that finds the segment must never
		// see this creation still registered (it would take the slot
		// over, and two creations of one file could then run at once).
		s.mu.Lock()
		closedMeanwhile := err == nil && s.closed
		if !closedMeanwhile {
			if err == nil {
				s.segs[id] = sg
			}
			s.endCreationLocked(id, done)
		}
		s.mu.Unlock()
		if err == nil && !closedMeanwhile {
			parkAll(s.env, s.env.open.add(sg))
		}
		if closedMeanwhile {
			// Close ran meanwhile and did not see this segment; it waits
			// for done, so release the file first.
			sg.wmu.Lock()
			_ = sg.closeLocked(engine.ErrClosed, false, nil)
			sg.wmu.Unlock()
			sg, err = nil, engine.ErrClosed
			s.mu.Lock()
			s.endCreationLocked(id, done)
			s.mu.Unlock()
		}
		return sg, err
	}
}

// endCreationLocked ends the creation (or deletion) that registered done
// for id (s.mu held), waking its waiters. The slot is cleared only if it
// is still done's: clearing another's would let two creations of one
// file run at once.
func (s *Store) endCreationLocked(id engine.SegmentID, done chan struct{}) {
	if s.creating[id] == done {
		delete(s.creating, id)
	}
	select {
	case <-done:
	default:
		close(done)
	}
}

// Append implements engine.SegmentStore. In always mode it returns after
// an fsync covers the batch; the wait ignores ctx, because by then the
// batch is in the file and will become visible, so reporting a failure
// would break the all-or-nothing contract.
func (s *Store) Append(ctx context.Context, id engine.SegmentID, entries [][]byte) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("mmapstore: append %s: %w", id, err)
	}
	if err := s.env.opts.Store.Limits.CheckBatch(entries); err != nil {
		return 0, fmt.Errorf("mmapstore: append %s: %w", id, err)
	}
	total := batchLen(entries)
	for attempt := 0; ; attempt++ {
		sg, err := s.lookupOrCreate(id)
		if err != nil {
			return 0, fmt.Errorf("mmapstore: append %s: %w", id, err)
		}
		sg.wmu.Lock()
		victims, err := sg.activateLocked()
		var first uint64
		if err == nil {
			first, err = sg.appendLocked(entries, total)
		}
		sg.wmu.Unlock()
		parkAll(s.env, victims)
		if errors.Is(err, engine.ErrNotFound) && attempt < 3 {
			continue // deleted between lookup and lock: Append creates it again
		}
		if err != nil {
			return 0, fmt.Errorf("mmapstore: append %s: %w", id, err)
		}
		s.syncer.markDirty(sg)
		if s.env.always {
			<-s.syncer.request().done
			if err := sg.failed(); err != nil {
				sg.wmu.Lock()
				sg.rollbackLocked()
				sg.wmu.Unlock()
				return 0, fmt.Errorf("mmapstore: append %s: %w", id, err)
			}
		}
		return first, nil
	}
}

// Read implements engine.SegmentStore.
func (s *Store) Read(ctx context.Context, id engine.SegmentID, offset uint64, maxEntries, maxBytes int) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mmapstore: read %s: %w", id, err)
	}
	if err := engine.CheckReadBounds(maxEntries, maxBytes); err != nil {
		return nil, fmt.Errorf("mmapstore: read %s: %w", id, err)
	}
	sg, err := s.lookup(id)
	if err != nil {
		return nil, fmt.Errorf("mmapstore: read %s: %w", id, err)
	}
	out, err := sg.read(offset, maxEntries, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("mmapstore: read %s: %w", id, err)
	}
	return out, nil
}

// Seal implements engine.SegmentStore. It fsyncs in every durability mode:
// a seal is rare and the sealed state must never outlive its data.
func (s *Store) Seal(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	if err := ctx.Err(); err != nil {
		return engine.SegmentInfo{}, fmt.Errorf("mmapstore: seal %s: %w", id, err)
	}
	sg, err := s.lookup(id)
	if err != nil {
		return engine.SegmentInfo{}, fmt.Errorf("mmapstore: seal %s: %w", id, err)
	}
	sg.wmu.Lock()
	info, err := sg.sealLocked()
	sg.wmu.Unlock()
	if err != nil {
		return engine.SegmentInfo{}, fmt.Errorf("mmapstore: seal %s: %w", id, err)
	}
	return info, nil
}

// Stat implements engine.SegmentStore. A segment found corrupt reports
// engine.ErrCorrupt.
func (s *Store) Stat(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	if err := ctx.Err(); err != nil {
		return engine.SegmentInfo{}, fmt.Errorf("mmapstore: stat %s: %w", id, err)
	}
	sg, err := s.lookup(id)
	if err != nil {
		return engine.SegmentInfo{}, fmt.Errorf("mmapstore: stat %s: %w", id, err)
	}
	sg.mu.RLock()
	info, err := sg.info(), sg.usableLocked()
	sg.mu.RUnlock()
	if err != nil {
		return engine.SegmentInfo{}, fmt.Errorf("mmapstore: stat %s: %w", id, err)
	}
	return info, nil
}

// List implements engine.SegmentStore. Corrupt segments are listed (with
// what is known of them) so an operator can find and Delete them.
func (s *Store) List(ctx context.Context, topic string) ([]engine.SegmentInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mmapstore: list %q: %w", topic, err)
	}
	if topic != "" {
		if err := engine.ValidateTopic(topic); err != nil {
			return nil, fmt.Errorf("mmapstore: list: %w", err)
		}
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, fmt.Errorf("mmapstore: list %q: %w", topic, engine.ErrClosed)
	}
	segs := make([]*segment, 0, len(s.segs))
	for id, sg := range s.segs {
		if topic == "" || id.Topic == topic {
			segs = append(segs, sg)
		}
	}
	s.mu.RUnlock()
	out := make([]engine.SegmentInfo, 0, len(segs))
	for _, sg := range segs {
		sg.mu.RLock()
		if sg.state != stateGone {
			out = append(out, sg.info())
		}
		sg.mu.RUnlock()
	}
	slices.SortFunc(out, func(a, b engine.SegmentInfo) int {
		return cmp.Or(cmp.Compare(a.ID.Topic, b.ID.Topic), cmp.Compare(a.ID.Segment, b.ID.Segment))
	})
	return out, nil
}

// Delete implements engine.SegmentStore. It works on corrupt segments too.
func (s *Store) Delete(ctx context.Context, id engine.SegmentID) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mmapstore: delete %s: %w", id, err)
	}
	sg, err := s.lookup(id)
	if err != nil {
		return fmt.Errorf("mmapstore: delete %s: %w", id, err)
	}
	sg.wmu.Lock()
	defer sg.wmu.Unlock()
	sg.mu.RLock()
	gone := sg.state == stateGone
	goneErr := sg.gone
	sg.mu.RUnlock()
	if gone {
		return fmt.Errorf("mmapstore: delete %s: %w", id, goneErr)
	}
	// Until the file is gone, appenders that would create the segment
	// again wait (as for a creation in flight): they must not create a new
	// file that the os.Remove below would then delete.
	done := make(chan struct{})
	s.mu.Lock()
	if s.segs[id] == sg {
		delete(s.segs, id)
		s.creating[id] = done
	} else {
		// Not the registered segment (never expected: only Delete takes a
		// segment out, and it marks it gone first); leave the slot alone.
		close(done)
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.endCreationLocked(id, done)
		s.mu.Unlock()
	}()
	// Nothing to flush: the data is going away.
	if err := sg.closeLocked(engine.ErrNotFound, true, nil); err != nil {
		s.log.Warn("release deleted segment", "topic", id.Topic, "segment", id.Segment, "err", err)
	}
	// dirMu keeps the topic directory from being removed by another
	// Delete, or from gaining a file mid-removal, until this is done.
	dmu := s.env.dirLock(id.Topic)
	dmu.Lock()
	defer dmu.Unlock()
	if err := os.Remove(sg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mmapstore: delete %s: %w: %w", id, err, engine.ErrUnavailable)
	}
	dir := filepath.Dir(sg.path)
	// Drop the topic directory once empty (rmdir fails otherwise).
	removedDir := os.Remove(dir) == nil
	if s.env.durable {
		syncThis := dir
		if removedDir {
			syncThis = s.topicsDir
		}
		if err := syncDir(syncThis); err != nil {
			return fmt.Errorf("mmapstore: delete %s: sync directory: %w: %w", id, err, engine.ErrUnavailable)
		}
	}
	return nil
}

// Sync implements engine.SegmentStore: it runs (or joins) a sync round over
// every segment with unsynced appends and waits for it.
func (s *Store) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mmapstore: sync: %w", err)
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return fmt.Errorf("mmapstore: sync: %w", engine.ErrClosed)
	}
	r := s.syncer.request()
	select {
	case <-r.done:
	case <-ctx.Done():
		return fmt.Errorf("mmapstore: sync: %w", ctx.Err())
	}
	if r.err != nil {
		return fmt.Errorf("mmapstore: sync: %w", r.err)
	}
	return nil
}

// Close implements engine.SegmentStore: it makes every open segment durable,
// checkpoints it, unmaps everything and releases the directory lock.
func (s *Store) Close() error {
	return s.close(false)
}

// close shuts the store down; abandon skips every flush and checkpoint,
// leaving the files as a killed process would (used by crash tests).
func (s *Store) close(abandon bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	segs := make([]*segment, 0, len(s.segs))
	for _, sg := range s.segs {
		segs = append(segs, sg)
	}
	var creating []chan struct{}
	for _, done := range s.creating {
		creating = append(creating, done)
	}
	s.mu.Unlock()
	// A creation in flight sees closed when it ends and releases its file.
	for _, done := range creating {
		<-done
	}
	// Each open segment is made durable and checkpointed on close. One
	// syncfs covers every segment's data at once (a node with 100,000
	// topics would otherwise wait for 200,000 fsyncs); each segment then
	// only writes its checkpoint, unless it took an append after the
	// syncfs began or the syncfs failed: that one fsyncs on its own.
	// Many segments close at once, as in recovery.
	var covered []position
	if !abandon {
		covered = make([]position, len(segs))
		for i, sg := range segs {
			sg.mu.RLock()
			covered[i] = sg.written
			sg.mu.RUnlock()
		}
		if err := s.env.syncFS(s.topicsDir); err != nil {
			s.log.Warn("syncfs before close failed; syncing each segment instead", "err", err)
			covered = nil
		}
	}
	errs := make([]error, len(segs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(recoveryWorkers, len(segs)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(segs); i = int(next.Add(1) - 1) {
				sg := segs[i]
				var cov *position
				if covered != nil {
					cov = &covered[i]
				}
				sg.wmu.Lock()
				errs[i] = sg.closeLocked(engine.ErrClosed, abandon, cov)
				sg.wmu.Unlock()
			}
		})
	}
	wg.Wait()
	if covered != nil {
		// The checkpoints name data already durable; making them durable
		// too only keeps the next open on its fast path.
		if err := s.env.syncFS(s.topicsDir); err != nil {
			s.log.Warn("syncfs of the checkpoints at close failed; the next open re-verifies the open segments", "err", err)
		}
	}
	// After the segments: a writer still waiting for a round gets it from
	// the last round (its data was synced by its segment's close).
	s.syncer.close(abandon)
	errs = append(errs, s.lock.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mmapstore: close: %w", err)
	}
	s.log.Info("store closed", "dir", s.dir, "abandon", abandon)
	return nil
}
