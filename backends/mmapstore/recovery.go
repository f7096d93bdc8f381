package mmapstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	mmap "github.com/edsrzf/mmap-go"
	"github.com/walrus-go/walrus/engine"
)

// Recovery runs once in Open, over every segment file:
//
//   - A file whose header does not verify, or whose name and header
//     disagree, is corrupt: kept untouched, reported by Stat and refused by
//     every operation but Delete (engine.ErrCorrupt).
//   - A sealed file (valid seal record) is trusted by its seal record and
//     not read now; its footer is verified when it is first mapped and
//     every entry's CRC whenever it is read.
//   - An open file is scanned from the start: batch after batch whose
//     header and every entry CRC verify and whose first offset continues
//     the previous batch. The scan stops at the first batch that does not
//     verify. If that is before the checkpoint (data known durable and
//     whole), acknowledged data was damaged: the segment is corrupt. Else
//     the rest is a torn tail from a crash: the file is cut back to the end
//     of the last whole batch and re-extended with zeros (durably, unless
//     durability is none), so stale bytes can never be scanned later.
//   - An open file exactly at its checkpoint with only zeros after its
//     data (a clean close) is used as it is: nothing to cut, nothing to
//     sync, one mapping. Files are recovered 16 at a time.
//   - An open file with no whole batch left is removed: its first append
//     was never acknowledged.

// recoveryWorkers bounds the files recovered (and closed) at once: a
// repair waits on an fsync, so many files in parallel make a node with
// thousands of topics start and stop in seconds instead of minutes; more
// workers only contend on the process's mapping lock.
const recoveryWorkers = 16

// firstReadBytes is what recovery reads of every file first: the header
// page, and all of a one-page open segment.
const firstReadBytes = 4096

// recoveryReadMax is the largest open segment file recovery reads into
// memory instead of mapping (mmap and munmap serialise on the process's
// mapping lock; a read of a few pages does not).
const recoveryReadMax = 256 << 10

type recoveryFile struct {
	id   engine.SegmentID
	path string
}

// recoverAll loads every segment under topicsDir. Workers take whole
// topic directories, listing and recovering their files, so a node with
// 100,000 topics does not list 100,000 directories one after another.
func recoverAll(e *env, topicsDir string) (map[engine.SegmentID]*segment, error) {
	ents, err := os.ReadDir(topicsDir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", topicsDir, err)
	}
	topics := make([]string, 0, len(ents))
	for _, t := range ents {
		if !t.IsDir() || engine.ValidateTopic(t.Name()) != nil {
			e.log.Warn("ignoring unexpected entry in the topics directory", "path", filepath.Join(topicsDir, t.Name()))
			continue
		}
		topics = append(topics, t.Name())
	}
	segs := make(map[engine.SegmentID]*segment, len(topics))
	var (
		mu       sync.Mutex
		firstErr error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	for range min(recoveryWorkers, len(topics)) {
		wg.Go(func() {
			var scratch []byte
			for {
				i := int(next.Add(1) - 1)
				if i >= len(topics) || failed() {
					return
				}
				files, err := listTopicFiles(e, filepath.Join(topicsDir, topics[i]), topics[i])
				if err != nil {
					fail(err)
					return
				}
				for _, rf := range files {
					sg, err := recoverSegment(e, rf.id, rf.path, &scratch)
					if err != nil {
						fail(err)
						return
					}
					if sg == nil {
						continue
					}
					if sg.state == stateOpen && sg.m != nil {
						// Recovered open segments are synced: parking one
						// beyond the bound is an unmap and a close.
						parkAll(e, e.open.add(sg))
					}
					mu.Lock()
					segs[rf.id] = sg
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		closeAll(segs)
		return nil, firstErr
	}
	return segs, nil
}

// listTopicFiles lists the segment files of one topic directory, removing
// the leftovers of creations that did not finish.
func listTopicFiles(e *env, dir, topic string) ([]recoveryFile, error) {
	files, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	out := make([]recoveryFile, 0, len(files))
	for _, f := range files {
		path := filepath.Join(dir, f.Name())
		if strings.HasSuffix(f.Name(), segSuffix+tmpSuffix) {
			// A segment whose creation did not finish: never used.
			if err := os.Remove(path); err != nil {
				return nil, fmt.Errorf("remove unfinished %s: %w", path, err)
			}
			continue
		}
		num, ok := parseSegmentFileName(f.Name())
		if !ok || !f.Type().IsRegular() {
			e.log.Warn("ignoring unexpected file in a topic directory", "path", path)
			continue
		}
		out = append(out, recoveryFile{id: engine.SegmentID{Topic: topic, Segment: num}, path: path})
	}
	return out, nil
}

// closeAll releases segments recovered so far when Open fails midway.
func closeAll(segs map[engine.SegmentID]*segment) {
	for _, sg := range segs {
		sg.wmu.Lock()
		_ = sg.closeLocked(engine.ErrClosed, true, nil)
		sg.wmu.Unlock()
	}
}

// corruptSegment is the placeholder for a file that failed verification.
// List reports it with the entries known intact (zero if none are).
func corruptSegment(e *env, id engine.SegmentID, path string, err error) *segment {
	err = fmt.Errorf("segment %s (%s): %w: %w", id, path, err, engine.ErrCorrupt)
	e.log.Error("segment corrupt", "topic", id.Topic, "segment", id.Segment, "err", err)
	sg := &segment{id: id, path: path, env: e, state: stateCorrupt}
	sg.fail(err)
	return sg
}

// recoverSegment opens one segment file. It returns (nil, nil) for an open
// segment with no whole batch (removed) and an error only for failures of
// the environment (I/O), never for bad contents.
func recoverSegment(e *env, id engine.SegmentID, path string, scratch *[]byte) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
		}
	}()
	// One read of the first page (and a byte more, to see the end of a
	// one-page file): for a small open segment that is the whole file, so
	// no stat and no second read.
	if cap(*scratch) < recoveryReadMax {
		*scratch = make([]byte, recoveryReadMax)
	}
	first := (*scratch)[:firstReadBytes+1]
	n, err := f.ReadAt(first, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	size := int64(n)
	whole := n <= firstReadBytes
	if !whole {
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", path, err)
		}
		size = fi.Size()
	}
	if size < dataStart {
		return corruptSegment(e, id, path, fmt.Errorf("file is %d bytes, shorter than its header", size)), nil
	}
	head := first[:dataStart]
	hdr, err := decodeFileHeader(head[fileHeaderOff:])
	if err != nil {
		return corruptSegment(e, id, path, errors.New("file header does not verify")), nil
	}
	if hdr.segment != id.Segment {
		return corruptSegment(e, id, path, fmt.Errorf("file header names segment %d", hdr.segment)), nil
	}
	rec, sealed, err := decodeSealRecord(head[sealRecordOff:])
	sealDamaged := err != nil
	if sealed {
		if end := rec.footerPos + rec.footerLen(); uint64(size) < end {
			sg := corruptSegment(e, id, path, fmt.Errorf("sealed file is %d bytes, its footer ends at %d", size, end))
			sg.published = position{entries: rec.entries, bytes: rec.bytes, end: rec.dataEnd} // List shows what the seal record says
			return sg, nil
		}
		return &segment{id: id, path: path, env: e, state: stateSealed, seal: rec,
			published: position{entries: rec.entries, bytes: rec.bytes, end: rec.dataEnd}}, nil
	}

	ckpt := decodeCheckpoint(head[checkpointOff:])
	// A small file (nearly every open segment of a node with many topics)
	// is read into scratch and, if clean, left parked: no mapping, no
	// descriptor, mapped again by its first append or read. A large one
	// is mapped for writing and, if clean, keeps that mapping.
	var (
		m      []byte
		mapped mmap.MMap
	)
	switch {
	case whole:
		m = (*scratch)[:size]
	case size <= recoveryReadMax:
		m = (*scratch)[:size]
		if _, err := f.ReadAt(m[len(first):], int64(len(first))); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	default:
		if mapped, err = mmap.MapRegion(f, int(size), mmap.RDWR, 0, 0); err != nil {
			return nil, fmt.Errorf("map %s: %w", path, err)
		}
		m = mapped
	}
	var ix index
	valid, tornBytes, scanErr := scanBatches(m, &ix)
	resealed := false
	if scanErr == nil && sealDamaged {
		// A damaged seal record (a torn write at power loss, or bit rot)
		// in front of whole data and a whole footer: the segment was
		// sealed, and the footer says exactly how. Rewrite the record.
		rec = sealRecord{entries: valid.entries, bytes: valid.bytes, dataEnd: valid.end, footerPos: footerPosFor(valid.end)}
		if fe := rec.footerPos + rec.footerLen(); fe <= uint64(len(m)) && checkFooter(m[rec.footerPos:fe], rec) == nil && footerMatches(m[rec.footerPos:fe], &ix) {
			resealed = true
		}
	}
	// A file left exactly at its checkpoint (a clean close, or a crash
	// with nothing appended since the last checkpoint) with only zeros
	// after its data needs no repair: what the checkpoint names is durable
	// and nothing stale can be scanned later. Checking the zeros reads the
	// file's unused tail, far cheaper than the fsync a repair costs.
	clean := scanErr == nil && !sealDamaged && tornBytes == 0 && valid.entries > 0 &&
		valid.end == ckpt.end && valid.entries == ckpt.entries && allZero(m[valid.end:])
	if clean && max(roundUpPage(size), e.opts.initialBytes()) == size {
		sg := &segment{id: id, path: path, env: e, state: stateOpen, ix: ix,
			written: valid, published: valid, synced: valid, ckpt: ckpt}
		if mapped != nil {
			keep = true
			sg.f, sg.m = f, mapped
		}
		return sg, nil
	}
	if mapped != nil {
		mapped.Unmap()
	}
	if scanErr != nil {
		return nil, fmt.Errorf("scan %s: %w", path, scanErr)
	}
	if resealed {
		var rb [sealRecordLen]byte
		putSealRecord(rb[:], rec)
		if _, err := f.WriteAt(rb[:], sealRecordOff); err != nil {
			return nil, fmt.Errorf("rewrite seal record of %s: %w", path, err)
		}
		if err := e.syncFile(f); err != nil {
			return nil, fmt.Errorf("sync %s: %w", path, err)
		}
		e.log.Warn("seal record damaged; rewrote it from the verified footer", "topic", id.Topic, "segment", id.Segment, "entries", rec.entries)
		return &segment{id: id, path: path, env: e, state: stateSealed, seal: rec, footerOK: true,
			published: position{entries: rec.entries, bytes: rec.bytes, end: rec.dataEnd}}, nil
	}
	if sealDamaged {
		e.log.Warn("seal record damaged and no whole footer; recovering as an open segment", "topic", id.Topic, "segment", id.Segment)
	}
	if valid.end < ckpt.end || valid.entries < ckpt.entries {
		sg := corruptSegment(e, id, path, fmt.Errorf("data damaged at byte %d, before the durable checkpoint at byte %d (entry %d of %d)", valid.end, ckpt.end, valid.entries, ckpt.entries))
		sg.published = valid // List shows the intact prefix
		return sg, nil
	}
	if valid.entries == 0 {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove empty segment %s: %w", path, err)
		}
		if e.durable {
			if err := syncDir(filepath.Dir(path)); err != nil {
				return nil, fmt.Errorf("sync %s: %w", filepath.Dir(path), err)
			}
		}
		e.log.Info("removed segment with no complete batch", "topic", id.Topic, "segment", id.Segment, "torn_bytes", tornBytes)
		return nil, nil
	}
	if tornBytes > 0 {
		e.log.Warn("truncated torn tail", "topic", id.Topic, "segment", id.Segment, "entries", valid.entries, "offset", valid.end, "torn_bytes", tornBytes)
	}
	// Zero everything after the valid data: cut the file back, then
	// preallocate again. Stale bytes from this crash could otherwise line up
	// with a later, shorter batch and be scanned as data after the next one.
	newSize := max(roundUpPage(size), e.opts.initialBytes(), roundUpPage(int64(valid.end)))
	if err := f.Truncate(int64(valid.end)); err != nil {
		return nil, fmt.Errorf("truncate %s: %w", path, err)
	}
	if err := preallocate(f, int64(valid.end), newSize-int64(valid.end)); err != nil {
		return nil, fmt.Errorf("re-extend %s: %w", path, err)
	}
	var zeroCkpt [checkpointLen]byte
	putCheckpoint(zeroCkpt[:], checkpoint{end: valid.end, entries: valid.entries})
	if _, err := f.WriteAt(zeroCkpt[:], checkpointOff); err != nil {
		return nil, fmt.Errorf("write checkpoint of %s: %w", path, err)
	}
	// The checkpoint may only be durable together with the data it
	// names, which the fsync below covers too (scanned data is whole, but
	// after a crash in none mode it may still sit only in the page cache).
	if err := e.syncFile(f); err != nil {
		return nil, fmt.Errorf("sync %s: %w", path, err)
	}
	rw, err := mmap.MapRegion(f, int(newSize), mmap.RDWR, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	keep = true
	return &segment{id: id, path: path, env: e, state: stateOpen, f: f, m: rw, ix: ix,
		written: valid, published: valid, synced: valid, ckpt: checkpoint{end: valid.end, entries: valid.entries}}, nil
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// scanBatches walks the data area of m, adding the position of every entry
// of every whole, verified batch to ix. It returns the position after the
// last such batch and how many non-zero bytes follow it (torn data) within
// the next 64 KiB, for the log. It never fails on bad contents; the error
// is for memory faults reading the mapping.
func scanBatches(m []byte, ix *index) (valid position, tornBytes int, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverFault(&err)
	valid = position{end: dataStart}
	var scratch []uint64
	for {
		pos := valid.end
		h, herr := decodeBatchHeader(m[pos:])
		if herr != nil || h.first != valid.entries || uint64(h.bodyBytes) > uint64(len(m))-pos-batchHeaderLen {
			break
		}
		end := pos + batchHeaderLen + uint64(h.bodyBytes)
		body := m[:end]
		scratch = scratch[:0]
		p := pos + batchHeaderLen
		var payload uint64
		ok := true
		for range h.count {
			pl, next, ferr := entryAt(body, p)
			if ferr != nil {
				ok = false
				break
			}
			scratch = append(scratch, p)
			payload += uint64(len(pl))
			p = next
		}
		if !ok || p != end {
			break
		}
		for _, q := range scratch {
			ix.add(q)
		}
		valid = position{entries: valid.entries + uint64(h.count), bytes: valid.bytes + payload, end: end}
	}
	for _, b := range m[valid.end:min(uint64(len(m)), valid.end+64<<10)] {
		if b != 0 {
			tornBytes++
		}
	}
	return valid, tornBytes, nil
}

// footerMatches reports whether a verified footer lists exactly the
// positions the scan found.
func footerMatches(footer []byte, ix *index) bool {
	for i := range ix.n {
		if footerPosition(footer, i) != ix.get(i) {
			return false
		}
	}
	return true
}
