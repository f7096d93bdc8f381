package mmapstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"unsafe"

	mmap "github.com/edsrzf/mmap-go"
	"github.com/walrus-go/walrus/engine"
)

// read copies out up to maxEntries entries from offset on, stopping before
// the payload total would pass maxBytes (but returning at least one).
func (sg *segment) read(offset uint64, maxEntries, maxBytes int) ([][]byte, error) {
	sg.mu.RLock()
	switch {
	case sg.state == stateSealed && sg.m == nil:
		sg.mu.RUnlock()
		return sg.readUnmapped(offset, maxEntries, maxBytes)
	case sg.state == stateOpen && sg.m == nil && offset < sg.published.entries:
		// (A read at the tail of a parked segment needs no mapping.)
		sg.mu.RUnlock()
		return sg.readParked(offset, maxEntries, maxBytes)
	}
	out, err := sg.readLocked(offset, maxEntries, maxBytes)
	sealed := sg.state == stateSealed
	sg.mu.RUnlock()
	if sealed {
		sg.env.mapped.touch(sg)
	} else {
		sg.used.Store(true)
	}
	return out, err
}

// readParked maps a parked open segment again (under wmu, as an append
// would) and reads it.
func (sg *segment) readParked(offset uint64, maxEntries, maxBytes int) ([][]byte, error) {
	sg.wmu.Lock()
	if sg.state == stateSealed {
		sg.wmu.Unlock()
		return sg.read(offset, maxEntries, maxBytes) // sealed meanwhile
	}
	victims, err := sg.activateLocked()
	if err != nil {
		sg.wmu.Unlock()
		return nil, err
	}
	sg.mu.RLock()
	out, err := sg.readLocked(offset, maxEntries, maxBytes)
	sg.mu.RUnlock()
	sg.wmu.Unlock()
	parkAll(sg.env, victims)
	return out, err
}

// readUnmapped maps a sealed segment and reads while still holding mu
// exclusively, so a concurrent eviction can never make the reader loop.
func (sg *segment) readUnmapped(offset uint64, maxEntries, maxBytes int) ([][]byte, error) {
	sg.mu.Lock()
	mappedNow := false
	if sg.state == stateSealed && sg.m == nil {
		if err := sg.mapSealedLocked(); err != nil {
			sg.mu.Unlock()
			return nil, err
		}
		mappedNow = true
	}
	out, err := sg.readLocked(offset, maxEntries, maxBytes)
	sg.mu.Unlock()
	if mappedNow {
		for _, v := range sg.env.mapped.add(sg) {
			v.evict()
		}
	}
	return out, err
}

// readLocked reads with mu held (shared or exclusive).
func (sg *segment) readLocked(offset uint64, maxEntries, maxBytes int) ([][]byte, error) {
	if err := sg.usableLocked(); err != nil {
		return nil, err
	}
	if sg.state == stateCorrupt {
		return nil, engine.ErrCorrupt
	}
	count := sg.published.entries
	if offset > count {
		return nil, fmt.Errorf("offset %d, segment has %d entries: %w", offset, count, engine.ErrOutOfRange)
	}
	if offset == count {
		return [][]byte{}, nil
	}
	var out [][]byte
	var err error
	if sg.state == stateSealed {
		footer := sg.m[sg.seal.footerPos : sg.seal.footerPos+sg.seal.footerLen()]
		out, err = copyEntries(sg.m[:sg.seal.dataEnd], posSource{footer: footer}, offset, count, maxEntries, maxBytes)
	} else {
		out, err = copyEntries(sg.m[:sg.published.end], posSource{ix: &sg.ix}, offset, count, maxEntries, maxBytes)
	}
	if err != nil {
		err = fmt.Errorf("read at offset %d: %w", offset, err)
		if errors.Is(err, engine.ErrCorrupt) {
			sg.fail(err)
			sg.env.log.Error("segment corrupt", "topic", sg.id.Topic, "segment", sg.id.Segment, "offset", offset, "err", err)
		}
		return nil, err
	}
	return out, nil
}

// posSource yields entry positions from one of the two indexes: the
// in-memory one of an open segment or the footer of a sealed one.
type posSource struct {
	footer []byte
	ix     *index
}

// fill writes the positions of entries [from, from+len(dst)) into dst.
func (p posSource) fill(dst []uint64, from uint64) {
	if p.ix != nil {
		p.ix.fill(dst, from)
		return
	}
	f := p.footer[footerHeadLen+8*from:]
	for i := range dst {
		dst[i] = binary.LittleEndian.Uint64(f[8*i:])
	}
}

// copyEntries copies entries [offset, ...) out of data (the valid region of
// the mapping) into one fresh buffer, verifying every frame's CRC; bad
// bytes become engine.ErrCorrupt, never data.
func copyEntries(data []byte, src posSource, offset, count uint64, maxEntries, maxBytes int) (out [][]byte, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if err != nil && !errors.Is(err, engine.ErrCorrupt) {
			out, err = nil, fmt.Errorf("%w: %w", err, engine.ErrUnavailable)
		}
	}()
	defer recoverFault(&err) // must be the deferred function itself for recover to work
	k := min(count-offset, uint64(maxEntries))
	var win [readWindow]uint64
	// First pass: how many entries fit the byte budget, and their total,
	// so the copy needs exactly two allocations.
	var n, total uint64
	size := uint64(len(data))
pass1:
	for n < k {
		w := win[:min(k-n, readWindow)]
		src.fill(w, offset+n)
		for _, p := range w {
			if p > size || size-p < entryHeaderLen {
				return nil, fmt.Errorf("entry %d: frame position %d outside the data: %w", offset+n, p, engine.ErrCorrupt)
			}
			l := uint64(binary.LittleEndian.Uint32(data[p:]))
			if l > size-p-entryHeaderLen {
				return nil, fmt.Errorf("entry %d: length %d overruns the data: %w", offset+n, l, engine.ErrCorrupt)
			}
			if n > 0 && total+l > uint64(maxBytes) {
				break pass1
			}
			total += l
			n++
		}
	}
	buf := makeNoZero(int(total))
	out = make([][]byte, n)
	for i := uint64(0); i < n; {
		w := win[:min(n-i, readWindow)]
		src.fill(w, offset+i)
		for _, p := range w {
			l := uint64(binary.LittleEndian.Uint32(data[p:]))
			payload := data[p+entryHeaderLen : p+entryHeaderLen+l]
			if binary.LittleEndian.Uint32(data[p+4:]) != crcOf(payload) {
				return nil, fmt.Errorf("entry %d: checksum mismatch: %w", offset+i, engine.ErrCorrupt)
			}
			c := copy(buf, payload)
			out[i] = buf[:c:c]
			buf = buf[c:]
			i++
		}
	}
	return out, nil
}

// mapSealedLocked maps a sealed segment read-only (mu held exclusively).
// The descriptor is closed right away: the mapping keeps the file alive, so
// sealed segments cost no descriptors. The footer is verified on first use.
func (sg *segment) mapSealedLocked() error {
	f, err := os.Open(sg.path)
	if err != nil {
		return fmt.Errorf("open sealed segment: %w: %w", err, engine.ErrUnavailable)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat sealed segment: %w: %w", err, engine.ErrUnavailable)
	}
	if end := sg.seal.footerPos + sg.seal.footerLen(); uint64(fi.Size()) < end {
		err := fmt.Errorf("sealed segment file is %d bytes, its footer ends at %d: %w", fi.Size(), end, engine.ErrCorrupt)
		sg.fail(err)
		return err
	}
	m, err := mmap.MapRegion(f, int(fi.Size()), mmap.RDONLY, 0, 0)
	if err != nil {
		return fmt.Errorf("map sealed segment: %w: %w", err, engine.ErrUnavailable)
	}
	if !sg.footerOK {
		if err := checkFooter(m[sg.seal.footerPos:sg.seal.footerPos+sg.seal.footerLen()], sg.seal); err != nil {
			m.Unmap()
			err = fmt.Errorf("sealed segment index footer: %w", engine.ErrCorrupt)
			sg.fail(err)
			sg.env.log.Error("segment corrupt", "topic", sg.id.Topic, "segment", sg.id.Segment, "err", err)
			return err
		}
		sg.footerOK = true
	}
	sg.m = m
	return nil
}

// evict unmaps a sealed segment the mapped set dropped.
func (sg *segment) evict() {
	sg.mu.Lock()
	defer sg.mu.Unlock()
	if sg.state == stateSealed && sg.m != nil {
		if err := sg.m.Unmap(); err != nil {
			sg.env.log.Warn("unmap sealed segment", "topic", sg.id.Topic, "segment", sg.id.Segment, "err", err)
		}
		sg.m = nil
	}
}

// makeNoZero returns a fresh n-byte slice without zeroing it first (every
// byte is overwritten by the copy right after). strings.Builder.Grow is the
// public door to the runtime's non-zeroing allocation; the string it would
// build is never made, so the bytes are an ordinary, never-shared heap
// object that the caller owns. Zeroing cost ~10% of a sequential read.
func makeNoZero(n int) []byte {
	if n == 0 {
		return []byte{}
	}
	var sb strings.Builder
	sb.Grow(n)
	sb.WriteByte(0) // a non-empty string, so StringData is the buffer itself
	b := unsafe.Slice(unsafe.StringData(sb.String()), sb.Cap())
	return b[:n:n]
}
