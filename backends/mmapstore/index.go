package mmapstore

import "math"

// index maps the offsets of an open segment to file positions: O(1) lookup,
// about 4 bytes of heap per entry. Entries are grouped in fixed-size chunks
// so growth never copies old positions (no doubling spikes on the heap).
// Within a chunk a position is stored as a uint32 delta from the chunk's
// first position; a chunk that spans more than 4 GiB (possible only with
// huge entries) switches to full uint64 positions.
//
// A sealed segment does not use index: its positions live in the file's
// footer, so sealed segments cost no heap at all.
//
// index is not safe for concurrent use; the segment's locks guard it.
type index struct {
	chunks []*indexChunk
	n      uint64
}

const (
	indexChunkShift  = 12
	indexChunkLen    = 1 << indexChunkShift
	indexChunkMask   = indexChunkLen - 1
	indexChunkMinCap = 16
)

type indexChunk struct {
	base   uint64
	narrow []uint32 // deltas from base; nil once the chunk went wide
	wide   []uint64 // absolute positions, only for chunks spanning > 4 GiB
}

// add appends the position of entry i == ix.n.
func (ix *index) add(pos uint64) {
	slot := ix.n & indexChunkMask
	if slot == 0 {
		// Small first, grown by append: a segment of a few entries (an
		// idle topic's) must not cost a whole chunk (16 KiB).
		ix.chunks = append(ix.chunks, &indexChunk{base: pos, narrow: make([]uint32, 0, indexChunkMinCap)})
	}
	c := ix.chunks[len(ix.chunks)-1]
	switch d := pos - c.base; {
	case c.wide != nil:
		c.wide = append(c.wide, pos)
	case d > math.MaxUint32:
		c.wide = make([]uint64, len(c.narrow), indexChunkLen)
		for i, v := range c.narrow {
			c.wide[i] = c.base + uint64(v)
		}
		c.narrow = nil
		c.wide = append(c.wide, pos)
	default:
		c.narrow = append(c.narrow, uint32(d))
	}
	ix.n++
}

// get returns the position of entry i < ix.n.
func (ix *index) get(i uint64) uint64 {
	c := ix.chunks[i>>indexChunkShift]
	if c.wide != nil {
		return c.wide[i&indexChunkMask]
	}
	return c.base + uint64(c.narrow[i&indexChunkMask])
}

// truncate drops entries from n on (used to roll back a failed write).
func (ix *index) truncate(n uint64) {
	if n >= ix.n {
		return
	}
	keep := int((n + indexChunkMask) >> indexChunkShift)
	clear(ix.chunks[keep:])
	ix.chunks = ix.chunks[:keep]
	if slot := n & indexChunkMask; slot != 0 {
		c := ix.chunks[keep-1]
		if c.wide != nil {
			c.wide = c.wide[:slot]
		} else {
			c.narrow = c.narrow[:slot]
		}
	}
	ix.n = n
}

// fill writes the positions of entries [from, from+len(dst)) into dst, a
// chunk at a time (the read path's bulk form of get).
func (ix *index) fill(dst []uint64, from uint64) {
	for len(dst) > 0 {
		c := ix.chunks[from>>indexChunkShift]
		slot := from & indexChunkMask
		n := min(uint64(len(dst)), indexChunkLen-slot)
		if c.wide != nil {
			copy(dst[:n], c.wide[slot:slot+n])
		} else {
			for i, d := range c.narrow[slot : slot+n] {
				dst[i] = c.base + uint64(d)
			}
		}
		dst = dst[n:]
		from += n
	}
}
