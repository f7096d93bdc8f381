// Package kbatch owns the Kafka record batch (v2) codec of the Kafka
// listener: it checks a produced batch (lengths, CRC-32C, record count),
// decompresses it (gzip, snappy, lz4, zstd) into keyed records, and encodes
// stored records as an uncompressed batch for Fetch. Structures are
// franz-go's kmsg.RecordBatch and kmsg.Record.
package kbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unsafe"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/record"
)

// ErrCorrupt is a record batch that fails its checks: it is refused
// whole with CORRUPT_MESSAGE, and nothing of it is stored.
var ErrCorrupt = errors.New("corrupt record batch")

// ErrUnsupported is a well-formed batch this node does not store
// (old magic, transactional or control batches).
var ErrUnsupported = errors.New("unsupported record batch")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchHeaderBytes is a v2 batch's head up to its records.
const batchHeaderBytes = 61

// Attribute bits of a v2 batch.
const (
	attrCodec         = 0x07
	attrTransactional = 0x10
	attrControl       = 0x20
)

// Decode parses the record batches of one produce partition into
// keyed records, in order, checking every length and CRC; maxBytes bounds
// the decompressed size.
func Decode(b []byte, maxBytes int) ([]record.Keyed, error) {
	var out []record.Keyed
	for len(b) > 0 {
		if len(b) < batchHeaderBytes {
			return nil, fmt.Errorf("%w: %d trailing bytes, shorter than a batch header", ErrCorrupt, len(b))
		}
		length := int64(int32(binary.BigEndian.Uint32(b[8:12])))
		if length < batchHeaderBytes-12 || length > int64(len(b)-12) {
			return nil, fmt.Errorf("%w: batch length %d, %d bytes left", ErrCorrupt, length, len(b)-12)
		}
		raw := b[:12+length]
		b = b[12+length:]
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(raw); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if batch.Magic != 2 {
			return nil, fmt.Errorf("%w: magic %d (only record batch v2 is stored)", ErrUnsupported, batch.Magic)
		}
		if got := crc32.Checksum(raw[21:], castagnoli); got != uint32(batch.CRC) {
			return nil, fmt.Errorf("%w: CRC %#x, computed %#x", ErrCorrupt, uint32(batch.CRC), got)
		}
		if batch.Attributes&(attrTransactional|attrControl) != 0 {
			return nil, fmt.Errorf("%w: transactional or control batch (transactions are not supported)", ErrUnsupported)
		}
		if batch.NumRecords < 0 || batch.LastOffsetDelta != batch.NumRecords-1 {
			return nil, fmt.Errorf("%w: %d records, last offset delta %d", ErrCorrupt, batch.NumRecords, batch.LastOffsetDelta)
		}
		recs, err := decompress(batch.Records, batch.Attributes&attrCodec, maxBytes)
		if err != nil {
			return nil, err
		}
		maxBytes -= len(recs)
		if out, err = appendRecords(out, recs, &batch); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// appendRecords parses n records, requiring each length to match.
func appendRecords(out []record.Keyed, b []byte, batch *kmsg.RecordBatch) ([]record.Keyed, error) {
	for i := range batch.NumRecords {
		l, w := binary.Varint(b)
		if w <= 0 || l < 0 || l > int64(len(b)-w) {
			return nil, fmt.Errorf("%w: record %d: length %d, %d bytes left", ErrCorrupt, i, l, len(b))
		}
		var r kmsg.Record
		span := b[:w+int(l)]
		b = b[w+int(l):]
		// Unsafe: header keys alias the request body, which is not reused.
		if err := r.UnsafeReadFrom(span); err != nil {
			return nil, fmt.Errorf("%w: record %d: %v", ErrCorrupt, i, err)
		}
		if r.OffsetDelta != i || int64(bodySize(&r)) != l {
			return nil, fmt.Errorf("%w: record %d: offset delta %d or length %d does not match its contents", ErrCorrupt, i, r.OffsetDelta, l)
		}
		k := record.Keyed{Timestamp: batch.FirstTimestamp + r.TimestampDelta64, Key: r.Key, Value: r.Value}
		if batch.ProducerID >= 0 {
			// An idempotent producer's batch: each record keeps its
			// producer and sequence (sequences wrap after MaxInt32).
			k.Idempotent, k.ProducerID, k.Epoch = true, batch.ProducerID, batch.ProducerEpoch
			k.Sequence = record.SeqAdd(batch.FirstSequence, int64(i))
		}
		if len(r.Headers) > 0 {
			k.Headers = make([]record.Header, len(r.Headers))
			for j, h := range r.Headers {
				k.Headers[j] = record.Header{Key: unsafe.Slice(unsafe.StringData(h.Key), len(h.Key)), Value: h.Value}
			}
		}
		out = append(out, k)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last of %d records", ErrCorrupt, len(b), batch.NumRecords)
	}
	return out, nil
}

// bodySize is the encoded length of r after its length field (Kafka
// varints are zig-zag, like encoding/binary's).
func bodySize(r *kmsg.Record) int {
	n := 1 + varintLen(r.TimestampDelta64) + varintLen(int64(r.OffsetDelta)) + bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		n += varintLen(int64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	return n
}

func varintLen(v int64) int {
	var tmp [binary.MaxVarintLen64]byte
	return binary.PutVarint(tmp[:], v)
}

func bytesLen(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

func decompress(b []byte, codec int16, maxBytes int) ([]byte, error) {
	var r io.Reader
	switch codec {
	case 0:
		return b, nil
	case 1:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrCorrupt, err)
		}
		r = zr
	case 2:
		return unsnappy(b, maxBytes)
	case 3:
		r = lz4.NewReader(bytes.NewReader(b))
	case 4:
		zr, err := zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max(maxBytes, 1))))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("%w: compression codec %d", ErrCorrupt, codec)
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(maxBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: decompress codec %d: %v", ErrCorrupt, codec, err)
	}
	if len(out) > maxBytes {
		return nil, fmt.Errorf("%w: decompresses to more than %d bytes", ErrCorrupt, maxBytes)
	}
	return out, nil
}

// xerialHeader starts a snappy batch in the Java client's framed format.
var xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// unsnappy decodes a snappy block, or the Java client's xerial framing
// of blocks.
func unsnappy(b []byte, maxBytes int) ([]byte, error) {
	if !bytes.HasPrefix(b, xerialHeader) {
		return snappyBlock(nil, b, maxBytes)
	}
	if len(b) < 16 {
		return nil, fmt.Errorf("%w: short xerial snappy header", ErrCorrupt)
	}
	b = b[16:] // header, version, compatible version
	var out []byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: truncated xerial snappy chunk", ErrCorrupt)
		}
		n := int64(binary.BigEndian.Uint32(b))
		if n > int64(len(b)-4) {
			return nil, fmt.Errorf("%w: xerial snappy chunk of %d bytes, %d left", ErrCorrupt, n, len(b)-4)
		}
		var err error
		if out, err = snappyBlock(out, b[4:4+n], maxBytes-len(out)); err != nil {
			return nil, err
		}
		b = b[4+n:]
	}
	return out, nil
}

func snappyBlock(dst, b []byte, maxBytes int) ([]byte, error) {
	n, err := s2.DecodedLen(b)
	if err != nil || n > maxBytes {
		return nil, fmt.Errorf("%w: snappy block of %d bytes (limit %d): %v", ErrCorrupt, n, maxBytes, err)
	}
	out, err := s2.Decode(nil, b)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
	}
	return append(dst, out...), nil
}

// Encode renders entries as one uncompressed v2 record batch whose
// offsets are the entries' offsets.
func Encode(dst []byte, entries []Entry) []byte {
	first, maxTs := entries[0].K.Timestamp, entries[0].K.Timestamp
	for _, e := range entries {
		maxTs = max(maxTs, e.K.Timestamp)
	}
	size := 0
	for _, e := range entries {
		size += 24 + len(e.K.Key) + len(e.K.Value)
		for _, h := range e.K.Headers {
			size += 20 + len(h.Key) + len(h.Value)
		}
	}
	recs := make([]byte, 0, size)
	var headers []kmsg.Header // reused: AppendTo copies them out
	for i, e := range entries {
		r := kmsg.Record{
			TimestampDelta64: e.K.Timestamp - first,
			OffsetDelta:      int32(i),
			Key:              e.K.Key,
			Value:            e.K.Value,
		}
		r.TimestampDelta = int32(r.TimestampDelta64)
		headers = headers[:0]
		for _, h := range e.K.Headers {
			// Unsafe: the string only lives while AppendTo copies it.
			headers = append(headers, kmsg.Header{Key: unsafe.String(unsafe.SliceData(h.Key), len(h.Key)), Value: h.Value})
		}
		r.Headers = headers
		r.Length = int32(bodySize(&r))
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		FirstOffset:          int64(entries[0].Off),
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(entries) - 1),
		FirstTimestamp:       first,
		MaxTimestamp:         maxTs,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(entries)),
		Records:              recs,
	}
	start := len(dst)
	dst = b.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start+8:], uint32(len(dst)-start-12))
	binary.BigEndian.PutUint32(dst[start+17:], crc32.Checksum(dst[start+21:], castagnoli))
	return dst
}

// Entry is one stored entry as a Kafka record.
type Entry struct {
	Off uint64
	K   record.Keyed
}
