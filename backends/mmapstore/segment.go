package mmapstore

import (
	"container/list"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"

	mmap "github.com/edsrzf/mmap-go"
	"github.com/walrus-go/walrus/engine"
)

// segState is the life cycle of a segment: open (mapped read-write, takes
// appends) → sealed (immutable, mapped read-only on demand) → gone (deleted
// or store closed). A segment found damaged at open is "corrupt" from the
// start and only Delete does anything with it.
type segState uint8

const (
	stateOpen segState = iota
	stateSealed
	stateCorrupt
	stateGone
)

// env is what a segment shares with its Store. It holds no back pointer to
// the Store itself.
type env struct {
	opts    Options
	log     *slog.Logger
	mapped  *mappedSet
	open    *openSet // the open segments that hold a mapping and descriptor
	durable bool     // durability is interval or always: creation and recovery fsync
	always  bool     // appends are published to readers only after their fsync
	// syncFile is fdatasync; tests replace it to inject fsync failures.
	syncFile func(*os.File) error
	// syncFS is syncfs of a directory's file system (tests replace it).
	syncFS func(dir string) error
	// wbufs pools the pwriteBufBytes buffers of writeBatchAt (*[]byte).
	wbufs sync.Pool
	// dirMu orders creating a topic directory's first file against
	// removing the directory when its last segment is deleted. It is
	// striped by topic: one lock for all topics made every file creation
	// of the process wait for the one before (the first PUT to many
	// topics at once runs into it on every replica).
	dirMu [64]sync.Mutex
}

// segment is one segment file.
//
// Locks, always taken in this order: wmu → fdMu → mu → mappedSet.mu.
//   - wmu serialises everything that changes the file: append, grow, seal,
//     delete, close. The appender writes (into the mapping, or with pwrite
//     through f for large batches) holding only wmu, beyond the published
//     end, where no reader looks; wmu also keeps f open meanwhile.
//   - fdMu guards f against being closed under the syncer, which holds it
//     shared while it fsyncs so fsync never blocks appends or readers.
//   - mu guards the mapping and everything readers use. Readers copy their
//     entries out while holding it shared, so a slice into a mapping never
//     outlives the lock; remapping (grow) and unmapping (seal, eviction,
//     delete, close) take it exclusively.
type segment struct {
	id   engine.SegmentID
	path string
	env  *env

	wmu sync.Mutex

	fdMu sync.RWMutex
	f    *os.File // open segments only
	// ckpt is the data end last written to the checkpoint record; the
	// syncer writes it under fdMu shared (it is the only such writer) and
	// seal and close under fdMu exclusive.
	ckpt checkpoint

	mu    sync.RWMutex
	state segState
	gone  error     // why the segment is gone: engine.ErrClosed or ErrNotFound
	m     mmap.MMap // open: whole file read-write; sealed: whole file read-only, or nil
	ix    index     // open: positions of the written entries
	// written is what the appender has put into the file (and ix);
	// published is what readers see. They are equal except in always mode,
	// where the syncer publishes a batch once an fsync covers it.
	written, published position
	synced             position // last position a completed fsync covered
	seal               sealRecord
	footerOK           bool // the footer's CRC was verified since open

	dirty   atomic.Bool // written since the syncer last picked it up
	failure atomic.Pointer[error]

	lruElem *list.Element // guarded by mappedSet.mu

	// used is set by every append and read of an open segment (CLOCK);
	// openIdx is 1 + its index in env.open, 0 when not counted there
	// (guarded by openSet.mu).
	used    atomic.Bool
	openIdx int
}

// position is a consistent (batch boundary) state of a segment.
type position struct {
	entries, bytes, end uint64
}

func (sg *segment) info() engine.SegmentInfo {
	return engine.SegmentInfo{ID: sg.id, Entries: sg.published.entries, Bytes: sg.published.bytes, Sealed: sg.state == stateSealed}
}

// fail records a sticky error: the segment refuses appends (and, for
// corruption, reads) until the store is reopened or the segment deleted.
func (sg *segment) fail(err error) {
	sg.failure.CompareAndSwap(nil, &err)
}

func (sg *segment) failed() error {
	if p := sg.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// usableLocked reports why the segment cannot be used (mu or wmu held).
func (sg *segment) usableLocked() error {
	if sg.state == stateGone {
		return sg.gone
	}
	return sg.failed()
}

// createSegment makes a new, empty, preallocated segment file. The file is
// built under a temporary name and renamed into place, so a crash never
// leaves a segment file without a valid header.
func createSegment(e *env, topicsDir string, id engine.SegmentID) (*segment, error) {
	dir, err := topicDir(topicsDir, id.Topic)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, engine.ErrInvalidName)
	}
	path := dir + string(os.PathSeparator) + segmentFileName(id.Segment)
	tmp := path + tmpSuffix
	dmu := e.dirLock(id.Topic)
	dmu.Lock()
	newDir := false
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		newDir = true
	}
	err = os.MkdirAll(dir, 0o755)
	var f *os.File
	if err == nil {
		f, err = os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	}
	dmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("create segment file: %w: %w", err, engine.ErrUnavailable)
	}
	size := e.opts.initialBytes()
	var hdr [fileHeaderLen]byte
	putFileHeader(hdr[:], fileHeader{segment: id.Segment})
	err = preallocate(f, 0, size)
	if err == nil {
		_, err = f.WriteAt(hdr[:], fileHeaderOff)
	}
	if err == nil && e.durable {
		err = e.syncFile(f)
	}
	renamed := false
	if err == nil {
		err = os.Rename(tmp, path)
		renamed = err == nil
	}
	if err == nil && e.durable {
		// The rename must be durable before any append is acknowledged,
		// and so must a new topic directory.
		err = syncDir(dir)
		if err == nil && newDir {
			err = syncDir(topicsDir)
		}
	}
	var m mmap.MMap
	if err == nil {
		m, err = mmap.MapRegion(f, int(size), mmap.RDWR, 0, 0)
	}
	if err != nil {
		f.Close()
		if renamed {
			os.Remove(path)
		} else {
			os.Remove(tmp)
		}
		return nil, fmt.Errorf("create segment file %s: %w: %w", path, err, engine.ErrUnavailable)
	}
	start := position{end: dataStart}
	return &segment{id: id, path: path, env: e, f: f, m: m, written: start, published: start, synced: start, ckpt: checkpoint{end: dataStart}}, nil
}

// dirLock is the dirMu stripe of topic (FNV-1a).
func (e *env) dirLock(topic string) *sync.Mutex {
	h := uint32(2166136261)
	for i := 0; i < len(topic); i++ {
		h = (h ^ uint32(topic[i])) * 16777619
	}
	return &e.dirMu[h%uint32(len(e.dirMu))]
}

func roundUpPage(n int64) int64 {
	p := int64(os.Getpagesize())
	return (n + p - 1) / p * p
}

// appendLocked writes one batch (wmu held). total is batchLen(entries).
// On success the batch is in the file and the index; it is published to
// readers now, or by the syncer after its fsync in always mode.
func (sg *segment) appendLocked(entries [][]byte, total int) (uint64, error) {
	if err := sg.usableLocked(); err != nil {
		return 0, err
	}
	switch sg.state {
	case stateSealed:
		return 0, engine.ErrSealed
	case stateCorrupt:
		return 0, sg.failed()
	}
	w := sg.written
	need := uint64(total)
	if w.end+need > uint64(len(sg.m)) {
		if err := sg.growLocked(w.end + need); err != nil {
			return 0, err
		}
	}
	var err error
	if need >= pwriteMinBytes {
		bp := sg.env.wbufs.Get().(*[]byte)
		err = writeBatchAt(sg.f, int64(w.end), w.entries, entries, total-batchHeaderLen, *bp)
		sg.env.wbufs.Put(bp)
	} else {
		err = writeBatch(sg.m[w.end:w.end+need], w.entries, entries)
	}
	if err != nil {
		// The batch could not be written (I/O error, or a file shrunk
		// behind our back under the mapping). What landed is beyond the
		// published end and will be zeroed by recovery; refuse further
		// appends.
		err = fmt.Errorf("write batch: %w: %w", err, engine.ErrUnavailable)
		sg.fail(err)
		return 0, err
	}
	sg.mu.Lock()
	pos := w.end + batchHeaderLen
	var payload uint64
	for _, e := range entries {
		sg.ix.add(pos)
		pos += entryHeaderLen + uint64(len(e))
		payload += uint64(len(e))
	}
	sg.written = position{entries: w.entries + uint64(len(entries)), bytes: w.bytes + payload, end: w.end + need}
	if !sg.env.always {
		sg.published = sg.written
	}
	sg.mu.Unlock()
	return w.entries, nil
}

// rollbackLocked (wmu held) erases batches that were written but never
// published. In always mode that is exactly what a failed fsync left
// unacknowledged: the appenders get an error, so the bytes are zeroed in
// the mapping (and the index cut back) rather than left for a later
// write-back to make them reappear after a reopen. Other modes publish at
// once, so there is nothing to undo.
func (sg *segment) rollbackLocked() {
	if !sg.env.always || sg.state != stateOpen || sg.m == nil {
		return
	}
	sg.mu.Lock()
	defer sg.mu.Unlock()
	if sg.written.end > sg.published.end {
		clear(sg.m[sg.published.end:sg.written.end])
		sg.ix.truncate(sg.published.entries)
		sg.written = sg.published
	}
}

// writeBatch encodes the batch into the mapping, turning a memory fault
// (SIGBUS: the backing page could not be read or allocated) into an error
// instead of a crash of the whole process.
func writeBatch(dst []byte, first uint64, entries [][]byte) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverFault(&err)
	putBatch(dst, first, entries)
	return nil
}

// recoverFault converts the panic SetPanicOnFault raises for a memory
// fault into *err and re-panics anything else (a bug must stay loud).
func recoverFault(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if f, ok := r.(interface{ Addr() uintptr }); ok {
		*err = fmt.Errorf("memory fault at %#x: %v", f.Addr(), r)
		return
	}
	panic(r)
}

// growLocked extends the file to hold at least need bytes and remaps it
// (wmu held). The new mapping is made before the old one is dropped, so a
// failure leaves the segment as it was; readers are excluded only for the
// pointer swap.
func (sg *segment) growLocked(need uint64) error {
	cur := uint64(len(sg.m))
	step := uint64(roundUpPage(min(sg.env.opts.SegmentFileBytes, 1<<30)))
	next := cur * 2
	if cur >= step {
		next = cur + step
	}
	if next < need {
		next = need
	}
	next = uint64(roundUpPage(int64(next)))
	if err := preallocate(sg.f, int64(cur), int64(next-cur)); err != nil {
		// Undo a partial extension (the zero-write fallback) so the file
		// size keeps matching the mapping.
		_ = sg.f.Truncate(int64(cur))
		return fmt.Errorf("grow segment file from %d to %d bytes: %w: %w", cur, next, err, engine.ErrUnavailable)
	}
	m, err := mmap.MapRegion(sg.f, int(next), mmap.RDWR, 0, 0)
	if err != nil {
		_ = sg.f.Truncate(int64(cur))
		return fmt.Errorf("remap segment file at %d bytes: %w: %w", next, err, engine.ErrUnavailable)
	}
	sg.swapMapping(m, "unmap after grow")
	return nil
}

// swapMapping installs m (nil: none) and unmaps the old mapping once
// readers, who copy under mu, are past it; a failed unmap is only logged
// (what fails is releasing address space, not data).
func (sg *segment) swapMapping(m mmap.MMap, what string) {
	sg.mu.Lock()
	old := sg.m
	sg.m = m
	sg.mu.Unlock()
	if err := old.Unmap(); err != nil {
		sg.env.log.Warn(what, "topic", sg.id.Topic, "segment", sg.id.Segment, "err", err)
	}
}

// readWindow is how many positions copyEntries fetches at a time (on the
// stack), so a large maxEntries needs no position buffer on the heap.
const readWindow = 256

// sealLocked makes an open segment immutable (wmu held). Order matters for
// crash safety: data durable → checkpoint, footer written and file trimmed,
// durable → seal record, durable. A crash before the seal record is durable
// leaves an open segment whose scan stops at the footer magic; recovery
// either re-derives the seal from a whole footer or drops the footer, and
// the segment can be sealed again. With durability none the fsyncs are
// skipped (nothing survives power loss in that mode anyway; CRCs still
// catch whatever a power loss mixes up).
func (sg *segment) sealLocked() (engine.SegmentInfo, error) {
	if err := sg.usableLocked(); err != nil {
		return engine.SegmentInfo{}, err
	}
	switch sg.state {
	case stateSealed:
		return sg.info(), nil
	case stateCorrupt:
		return engine.SegmentInfo{}, sg.failed()
	}
	if sg.m == nil {
		// Parked: map it for the footer (it leaves the open set below).
		if err := sg.unparkLocked(); err != nil {
			return engine.SegmentInfo{}, fmt.Errorf("seal: %w", err)
		}
	}
	sg.env.open.remove(sg)
	sg.fdMu.Lock()
	defer sg.fdMu.Unlock()
	w := sg.written
	fail := func(what string, err error) (engine.SegmentInfo, error) {
		err = fmt.Errorf("seal: %s: %w: %w", what, err, engine.ErrUnavailable)
		sg.fail(err)
		return engine.SegmentInfo{}, err
	}
	sync := func() error {
		if !sg.env.durable {
			return nil
		}
		return sg.env.syncFile(sg.f)
	}
	if err := sync(); err != nil {
		return fail("sync data", err)
	}
	sg.mu.Lock()
	sg.published, sg.synced = w, w
	sg.mu.Unlock()
	if err := sg.writeCheckpoint(w); err != nil {
		return fail("write checkpoint", err)
	}
	rec := sealRecord{entries: w.entries, bytes: w.bytes, dataEnd: w.end, footerPos: footerPosFor(w.end)}
	fileEnd := rec.footerPos + rec.footerLen()
	if fileEnd > uint64(len(sg.m)) {
		if err := sg.growLocked(fileEnd); err != nil {
			return engine.SegmentInfo{}, fmt.Errorf("seal: %w", err)
		}
	}
	// The footer goes through the mapping (no heap copy of the index) into
	// bytes no reader looks at.
	clear(sg.m[w.end:rec.footerPos])
	putFooter(sg.m[rec.footerPos:fileEnd], sg.ix.get, w.entries)
	sg.mu.Lock()
	old := sg.m
	sg.m = nil
	sg.state = stateSealed
	sg.seal = rec
	sg.footerOK = true
	sg.ix = index{}
	sg.mu.Unlock()
	if err := old.Unmap(); err != nil {
		return fail("unmap", err)
	}
	// From here readers map the file read-only on demand. Trim it, then
	// make the seal record durable last.
	if err := sg.f.Truncate(int64(fileEnd)); err != nil {
		return fail("trim file", err)
	}
	if err := sync(); err != nil {
		return fail("sync footer", err)
	}
	var rb [sealRecordLen]byte
	putSealRecord(rb[:], rec)
	if _, err := sg.f.WriteAt(rb[:], sealRecordOff); err != nil {
		return fail("write seal record", err)
	}
	if err := sync(); err != nil {
		return fail("sync seal record", err)
	}
	if err := sg.f.Close(); err != nil {
		sg.env.log.Warn("close sealed segment file", "topic", sg.id.Topic, "segment", sg.id.Segment, "err", err)
	}
	sg.f = nil
	return sg.info(), nil
}

// syncOnce makes everything written so far durable (the syncer's unit of
// work). It first records, in the checkpoint, the end that the previous
// completed sync covered: a checkpoint therefore only ever names bytes
// that were already durable before it was written, and recovery may treat
// damage before it as corruption rather than a torn tail.
func (sg *segment) syncOnce() error {
	sg.dirty.Store(false)
	sg.fdMu.RLock()
	defer sg.fdMu.RUnlock()
	if sg.failed() != nil {
		return sg.failed()
	}
	sg.mu.RLock()
	target, prev, parked := sg.written, sg.synced, sg.state == stateOpen && sg.m == nil
	sg.mu.RUnlock()
	f := sg.f
	if f == nil {
		if !parked || target.end == prev.end {
			return nil
		}
		// Parked without an fsync (durability none) and now asked to sync
		// (Store.Sync): through a descriptor of its own, for this round.
		var err error
		if f, err = os.OpenFile(sg.path, os.O_RDWR, 0); err != nil {
			err = fmt.Errorf("reopen parked segment to sync: %w: %w", err, engine.ErrUnavailable)
			sg.fail(err)
			return err
		}
		defer f.Close()
	}
	if prev.end > sg.ckpt.end+ckptLagBytes {
		if err := sg.writeCheckpointTo(f, prev); err != nil {
			err = fmt.Errorf("write checkpoint: %w: %w", err, engine.ErrUnavailable)
			sg.fail(err)
			return err
		}
	}
	if target.end == prev.end {
		return nil
	}
	if err := sg.env.syncFile(f); err != nil {
		// After a failed fsync the kernel may have dropped the dirty
		// pages (fsyncgate): nothing about the file can be trusted until
		// recovery re-reads it, so the segment stops taking appends.
		err = fmt.Errorf("fdatasync: %w: %w", err, engine.ErrUnavailable)
		sg.fail(err)
		return err
	}
	sg.mu.Lock()
	if target.end > sg.synced.end {
		sg.synced = target
	}
	if sg.state == stateOpen && target.end > sg.published.end {
		sg.published = target
	}
	sg.mu.Unlock()
	return nil
}

func (sg *segment) writeCheckpoint(p position) error {
	return sg.writeCheckpointTo(sg.f, p)
}

func (sg *segment) writeCheckpointTo(f *os.File, p position) error {
	var b [checkpointLen]byte
	c := checkpoint{end: p.end, entries: p.entries}
	putCheckpoint(b[:], c)
	if _, err := f.WriteAt(b[:], checkpointOff); err != nil {
		return err
	}
	sg.ckpt = c
	return nil
}

// closeLocked releases the segment (wmu held). A clean close makes an open
// segment durable and checkpoints its whole data, so after a clean close
// any damage found on reopen is reported as corruption. If abandon is set
// it only releases memory and descriptors, as a killed process would.
//
// covered, when set, is what a syncfs of the whole file system made
// durable (Store.close): if nothing was appended since, the segment needs
// no fsync of its own, only its checkpoint written.
func (sg *segment) closeLocked(why error, abandon bool, covered *position) error {
	var err error
	sg.env.open.remove(sg)
	sg.fdMu.Lock()
	if sg.f == nil && sg.state == stateOpen && !abandon && sg.failed() == nil && sg.ckpt.end != sg.written.end {
		// Parked since its last checkpoint: reopen it to checkpoint it.
		f, oerr := os.OpenFile(sg.path, os.O_RDWR, 0)
		if oerr != nil {
			err = fmt.Errorf("close %s: reopen parked segment: %w: %w", sg.id, oerr, engine.ErrUnavailable)
		} else {
			sg.f = f
		}
	}
	if sg.f != nil {
		if !abandon && sg.state == stateOpen && sg.failed() == nil {
			w := sg.written
			durable := covered != nil && *covered == w
			if !durable {
				err = sg.env.syncFile(sg.f)
			}
			if err == nil && sg.ckpt != (checkpoint{end: w.end, entries: w.entries}) {
				err = sg.writeCheckpoint(w)
			}
			if err == nil && !durable {
				err = sg.env.syncFile(sg.f)
			}
			if err != nil {
				err = fmt.Errorf("close %s: %w: %w", sg.id, err, engine.ErrUnavailable)
			}
		}
		if cerr := sg.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w: %w", sg.id, cerr, engine.ErrUnavailable)
		}
		sg.f = nil
	}
	sg.fdMu.Unlock()
	sg.mu.Lock()
	if sg.m != nil {
		if uerr := sg.m.Unmap(); uerr != nil && err == nil {
			err = fmt.Errorf("unmap %s: %w", sg.id, uerr)
		}
		sg.m = nil
	}
	sg.ix = index{}
	sg.state = stateGone
	sg.gone = why
	sg.mu.Unlock()
	sg.env.mapped.remove(sg)
	return err
}

// ckptLagBytes is how far the checkpoint may lag the synced data before a
// sync round rewrites it. Writing it every round would add a page (and a
// journal update) to every fsync; lagging only shrinks the region where
// damage is classified as corruption instead of a torn tail.
const ckptLagBytes = 4 << 20
