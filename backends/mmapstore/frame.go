package mmapstore

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// This file is the pure codec of the segment file format: fixed-size records
// at the start of the file (file header, checkpoint, seal record), batch
// headers and entry frames in the data area, and the index footer written
// at seal. It does no I/O; every decoder checks lengths against the buffer it
// is given before it reads, so it is safe on arbitrary bytes (see the fuzz
// tests). All integers are little-endian.
//
//	offset  size  what
//	0       64    file header      magic "WALRUSEG", version, segment number, CRC
//	64      32    checkpoint       data end known durable at the last sync round, CRC
//	128     64    seal record      zero until sealed; entries, bytes, data end, footer, CRC
//	256     ...   data             batches, back to back, then zeros (never written)
//
// A batch is a 24-byte header followed by its entries' frames:
//
//	batch header: magic "BTCH" u32 | count u32 | first offset u64 | body bytes u32 | CRC u32
//	entry frame:  payload length u32 | masked CRC32C(payload) u32 | payload
//
// A sealed file ends with the footer (8-byte aligned, after the data):
//
//	footer: magic "FOOT" u32 | CRC u32 (of count and positions) | count u64 | count x position u64

const (
	fileHeaderOff  = 0
	fileHeaderLen  = 64
	checkpointOff  = 64
	checkpointLen  = 32
	sealRecordOff  = 128
	sealRecordLen  = 64
	dataStart      = 256
	batchHeaderLen = 24
	entryHeaderLen = 8
	footerHeadLen  = 16
	formatVersion  = 1
)

// Magic numbers. Each is non-zero so that the zeros of a preallocated,
// never-written region can never decode as a record.
var fileMagic = [8]byte{'W', 'A', 'L', 'R', 'U', 'S', 'E', 'G'}

const (
	batchMagic      uint32 = 'B' | 'T'<<8 | 'C'<<16 | 'H'<<24
	checkpointMagic uint32 = 'C' | 'K'<<8 | 'P'<<16 | 'T'<<24
	sealMagic       uint32 = 'S' | 'E'<<8 | 'A'<<16 | 'L'<<24
	footerMagic     uint32 = 'F' | 'O'<<8 | 'O'<<16 | 'T'<<24
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errFrame is the codec's verdict on bytes that do not decode. Callers turn
// it into engine.ErrCorrupt or into the end of the valid data.
var errFrame = errors.New("invalid frame")

// maskCRC keeps the stored CRC of an empty payload (CRC32C = 0) from being
// zero, so a zeroed entry header never verifies (the LevelDB mask).
func maskCRC(c uint32) uint32 { return (c>>15 | c<<17) + 0xa282ead8 }

func crcOf(b []byte) uint32 { return maskCRC(crc32.Checksum(b, castagnoli)) }

// batchLen is the on-disk size of a batch (header plus frames).
func batchLen(entries [][]byte) int {
	n := batchHeaderLen
	for _, e := range entries {
		n += entryHeaderLen + len(e)
	}
	return n
}

// putBatch encodes entries as one batch at the start of dst, which must hold
// batchLen(entries) bytes. The frames are written first and the header last
// only for clarity: atomicity comes from verification, not write order.
func putBatch(dst []byte, first uint64, entries [][]byte) int {
	pos := batchHeaderLen
	for _, e := range entries {
		f := dst[pos : pos+entryHeaderLen+len(e)]
		putEntryHeader(f, e)
		copy(f[entryHeaderLen:], e)
		pos += len(f)
	}
	putBatchHeader(dst, len(entries), first, pos-batchHeaderLen)
	return pos
}

// putBatchHeader encodes, at the start of h, the header of a batch of
// count entries starting at offset first whose frames take bodyBytes.
func putBatchHeader(h []byte, count int, first uint64, bodyBytes int) {
	h = h[:batchHeaderLen]
	binary.LittleEndian.PutUint32(h[0:4], batchMagic)
	binary.LittleEndian.PutUint32(h[4:8], uint32(count))
	binary.LittleEndian.PutUint64(h[8:16], first)
	binary.LittleEndian.PutUint32(h[16:20], uint32(bodyBytes))
	binary.LittleEndian.PutUint32(h[20:24], crcOf(h[0:20]))
}

// putEntryHeader encodes, at the start of f, the frame header (length and
// masked CRC) of payload e.
func putEntryHeader(f []byte, e []byte) {
	binary.LittleEndian.PutUint32(f[0:4], uint32(len(e)))
	binary.LittleEndian.PutUint32(f[4:8], crcOf(e))
}

// batchHeader is a decoded batch header.
type batchHeader struct {
	count     uint32
	first     uint64
	bodyBytes uint32
}

// decodeBatchHeader checks magic and CRC of the header at the start of b.
func decodeBatchHeader(b []byte) (batchHeader, error) {
	if len(b) < batchHeaderLen {
		return batchHeader{}, errFrame
	}
	if binary.LittleEndian.Uint32(b[0:4]) != batchMagic || binary.LittleEndian.Uint32(b[20:24]) != crcOf(b[0:20]) {
		return batchHeader{}, errFrame
	}
	h := batchHeader{
		count:     binary.LittleEndian.Uint32(b[4:8]),
		first:     binary.LittleEndian.Uint64(b[8:16]),
		bodyBytes: binary.LittleEndian.Uint32(b[16:20]),
	}
	if h.count == 0 || uint64(h.bodyBytes) < uint64(h.count)*entryHeaderLen {
		return batchHeader{}, errFrame
	}
	return h, nil
}

// entryAt decodes and verifies the entry frame at b[pos:], where b ends at
// the end of the valid region. It returns the payload (aliasing b) and the
// position after the frame.
func entryAt(b []byte, pos uint64) (payload []byte, next uint64, err error) {
	if pos > uint64(len(b)) || uint64(len(b))-pos < entryHeaderLen {
		return nil, 0, errFrame
	}
	n := uint64(binary.LittleEndian.Uint32(b[pos : pos+4]))
	start := pos + entryHeaderLen
	if n > uint64(len(b))-start {
		return nil, 0, errFrame
	}
	p := b[start : start+n]
	if binary.LittleEndian.Uint32(b[pos+4:pos+8]) != crcOf(p) {
		return nil, 0, errFrame
	}
	return p, start + n, nil
}

// fileHeader is the immutable first record of a segment file.
type fileHeader struct {
	segment uint64
}

func putFileHeader(dst []byte, h fileHeader) {
	clear(dst[:fileHeaderLen])
	copy(dst[0:8], fileMagic[:])
	binary.LittleEndian.PutUint32(dst[8:12], formatVersion)
	binary.LittleEndian.PutUint64(dst[16:24], h.segment)
	binary.LittleEndian.PutUint64(dst[24:32], dataStart)
	binary.LittleEndian.PutUint32(dst[60:64], crcOf(dst[0:60]))
}

func decodeFileHeader(b []byte) (fileHeader, error) {
	if len(b) < fileHeaderLen || [8]byte(b[0:8]) != fileMagic {
		return fileHeader{}, errFrame
	}
	if binary.LittleEndian.Uint32(b[60:64]) != crcOf(b[0:60]) ||
		binary.LittleEndian.Uint32(b[8:12]) != formatVersion ||
		binary.LittleEndian.Uint64(b[24:32]) != dataStart {
		return fileHeader{}, errFrame
	}
	return fileHeader{segment: binary.LittleEndian.Uint64(b[16:24])}, nil
}

// checkpoint records a data end that was durable (fully fsynced) before the
// checkpoint itself was written. Recovery treats damage before it as
// corruption of acknowledged data and damage after it as a torn tail.
type checkpoint struct {
	end     uint64
	entries uint64
}

func putCheckpoint(dst []byte, c checkpoint) {
	clear(dst[:checkpointLen])
	binary.LittleEndian.PutUint32(dst[0:4], checkpointMagic)
	binary.LittleEndian.PutUint64(dst[8:16], c.end)
	binary.LittleEndian.PutUint64(dst[16:24], c.entries)
	binary.LittleEndian.PutUint32(dst[24:28], crcOf(dst[0:24]))
}

// decodeCheckpoint returns the zero checkpoint (nothing known durable) for
// a never-written or damaged record: a checkpoint only ever makes recovery
// stricter, so losing one is safe.
func decodeCheckpoint(b []byte) checkpoint {
	if len(b) < checkpointLen || binary.LittleEndian.Uint32(b[0:4]) != checkpointMagic ||
		binary.LittleEndian.Uint32(b[24:28]) != crcOf(b[0:24]) {
		return checkpoint{}
	}
	return checkpoint{end: binary.LittleEndian.Uint64(b[8:16]), entries: binary.LittleEndian.Uint64(b[16:24])}
}

// sealRecord makes a segment immutable once it is durable.
type sealRecord struct {
	entries   uint64
	bytes     uint64
	dataEnd   uint64
	footerPos uint64
}

func (r sealRecord) footerLen() uint64 { return footerHeadLen + 8*r.entries }

func putSealRecord(dst []byte, r sealRecord) {
	clear(dst[:sealRecordLen])
	binary.LittleEndian.PutUint32(dst[0:4], sealMagic)
	binary.LittleEndian.PutUint32(dst[4:8], formatVersion)
	binary.LittleEndian.PutUint64(dst[8:16], r.entries)
	binary.LittleEndian.PutUint64(dst[16:24], r.bytes)
	binary.LittleEndian.PutUint64(dst[24:32], r.dataEnd)
	binary.LittleEndian.PutUint64(dst[32:40], r.footerPos)
	binary.LittleEndian.PutUint32(dst[60:64], crcOf(dst[0:60]))
}

// decodeSealRecord reports ok=false for an all-zero record (not sealed) and
// errFrame for a record that is present but damaged or inconsistent.
func decodeSealRecord(b []byte) (r sealRecord, ok bool, err error) {
	if len(b) < sealRecordLen {
		return r, false, errFrame
	}
	if binary.LittleEndian.Uint32(b[0:4]) == 0 && binary.LittleEndian.Uint32(b[60:64]) == 0 {
		return r, false, nil
	}
	if binary.LittleEndian.Uint32(b[0:4]) != sealMagic || binary.LittleEndian.Uint32(b[60:64]) != crcOf(b[0:60]) ||
		binary.LittleEndian.Uint32(b[4:8]) != formatVersion {
		return r, false, errFrame
	}
	r = sealRecord{
		entries:   binary.LittleEndian.Uint64(b[8:16]),
		bytes:     binary.LittleEndian.Uint64(b[16:24]),
		dataEnd:   binary.LittleEndian.Uint64(b[24:32]),
		footerPos: binary.LittleEndian.Uint64(b[32:40]),
	}
	// Every entry takes at least a frame header, and the footer follows the
	// data: anything else cannot have been written by us.
	if r.dataEnd < dataStart || r.footerPos < r.dataEnd || r.footerPos-r.dataEnd >= 8 ||
		r.entries > (r.dataEnd-dataStart)/entryHeaderLen || r.bytes > r.dataEnd-dataStart {
		return sealRecord{}, false, errFrame
	}
	return r, true, nil
}

// footerPosFor is where the footer of a segment whose data ends at end goes.
func footerPosFor(end uint64) uint64 { return (end + 7) &^ 7 }

// putFooter encodes the index footer for positions into dst, which must hold
// footerHeadLen+8*len(positions) bytes.
func putFooter(dst []byte, positions func(i uint64) uint64, count uint64) {
	binary.LittleEndian.PutUint32(dst[0:4], footerMagic)
	binary.LittleEndian.PutUint64(dst[8:16], count)
	for i := uint64(0); i < count; i++ {
		binary.LittleEndian.PutUint64(dst[footerHeadLen+8*i:], positions(i))
	}
	binary.LittleEndian.PutUint32(dst[4:8], crcOf(dst[8:footerHeadLen+8*count]))
}

// checkFooter verifies the footer b (exactly footerHeadLen+8*count bytes)
// of a segment with the given seal record: magic, count, CRC and that every
// position lies in the data area in increasing order.
func checkFooter(b []byte, r sealRecord) error {
	if uint64(len(b)) != r.footerLen() || binary.LittleEndian.Uint32(b[0:4]) != footerMagic ||
		binary.LittleEndian.Uint64(b[8:16]) != r.entries || binary.LittleEndian.Uint32(b[4:8]) != crcOf(b[8:]) {
		return errFrame
	}
	prev := uint64(0)
	for i := uint64(0); i < r.entries; i++ {
		p := binary.LittleEndian.Uint64(b[footerHeadLen+8*i:])
		if p < dataStart+batchHeaderLen || p < prev+entryHeaderLen || p > r.dataEnd-entryHeaderLen {
			return errFrame
		}
		prev = p
	}
	return nil
}

// footerPosition reads entry i's position from a verified footer.
func footerPosition(footer []byte, i uint64) uint64 {
	return binary.LittleEndian.Uint64(footer[footerHeadLen+8*i:])
}
