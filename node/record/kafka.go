package record

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Version2 is the first byte of a keyed record, written by the Kafka
// listener: besides the leader's append time (which SEEK, retention and the
// time floor read, and which never decreases along a topic) it keeps what a
// Kafka producer sent, byte for byte: its own timestamp, a nullable key, a
// nullable value and the headers.
//
//	byte    2
//	int64   append time, Unix ms, big-endian (stamped by the segment leader)
//	int64   producer timestamp, Unix ms, big-endian
//	varint  key length (zig-zag; -1 = null), key bytes
//	varint  value length (zig-zag; -1 = null), value bytes
//	uvarint header count, then per header:
//	        uvarint key length, key bytes, varint value length (-1 = null), value bytes
//
// Decode returns the value as the payload, so every reader of the text
// protocol handles keyed records like timed ones.
const Version2 byte = 2

// Version3 is a keyed record of an idempotent Kafka producer: Version2
// with the producer's id, epoch and the record's sequence number after the
// producer timestamp, so a new segment leader can rebuild the producers'
// sequences from the log:
//
//	byte    3
//	int64   append time; int64 producer timestamp (as Version2)
//	int64   producer id, int16 producer epoch, int32 sequence (big-endian)
//	then key, value and headers as Version2
const Version3 byte = 3

// v2Fixed is the fixed head of a keyed record (version, two times);
// v3Fixed adds the producer fields.
const (
	v2Fixed = 17
	v3Fixed = v2Fixed + 14
)

// Keyed is the Kafka part of a keyed record. Nil Key or Value are null;
// empty non-nil ones are empty.
type Keyed struct {
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []Header
	// Idempotent records carry their producer (Version3).
	Idempotent bool
	ProducerID int64
	Epoch      int16
	Sequence   int32
}

// Header is one record header; a nil Value is null.
type Header struct {
	Key   []byte
	Value []byte
}

// SeqAdd is a Kafka producer sequence s advanced by n records (sequences
// wrap after MaxInt32 to 0).
func SeqAdd(s int32, n int64) int32 { return int32((int64(s) + n) % (math.MaxInt32 + 1)) }

// KeyedSize is the encoded length of k (for one allocation).
func KeyedSize(k *Keyed) int {
	n := v3Fixed + 2*binary.MaxVarintLen64 + len(k.Key) + len(k.Value) + binary.MaxVarintLen64
	for _, h := range k.Headers {
		n += 2*binary.MaxVarintLen64 + len(h.Key) + len(h.Value)
	}
	return n
}

// AppendKeyed appends the keyed record of k stamped appendTime to dst.
func AppendKeyed(dst []byte, appendTime int64, k *Keyed) []byte {
	if k.Idempotent {
		dst = append(dst, Version3)
	} else {
		dst = append(dst, Version2)
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(appendTime))
	dst = binary.BigEndian.AppendUint64(dst, uint64(k.Timestamp))
	if k.Idempotent {
		dst = binary.BigEndian.AppendUint64(dst, uint64(k.ProducerID))
		dst = binary.BigEndian.AppendUint16(dst, uint16(k.Epoch))
		dst = binary.BigEndian.AppendUint32(dst, uint32(k.Sequence))
	}
	dst = appendNullable(dst, k.Key)
	dst = appendNullable(dst, k.Value)
	dst = binary.AppendUvarint(dst, uint64(len(k.Headers)))
	for _, h := range k.Headers {
		dst = binary.AppendUvarint(dst, uint64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendNullable(dst, h.Value)
	}
	return dst
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// Stamp sets the append time of a stored record in place (the segment
// leader stamps records the Kafka listener encoded).
func Stamp(b []byte, appendTime int64) error {
	if len(b) < HeaderBytes || (b[0] != Version1 && b[0] != Version2 && b[0] != Version3) {
		return fmt.Errorf("%w: cannot stamp %d bytes, first byte %#x", ErrCorrupt, len(b), first(b))
	}
	binary.BigEndian.PutUint64(b[1:9], uint64(appendTime))
	return nil
}

// DecodeKeyed splits a stored record into its append time and Kafka part
// (aliasing b). A version 1 record reads as a null key, no headers and the
// append time as the producer timestamp, so natively written entries are
// ordinary Kafka records.
func DecodeKeyed(b []byte) (appendTime int64, k Keyed, err error) {
	if len(b) >= HeaderBytes && b[0] == Version1 {
		ts := int64(binary.BigEndian.Uint64(b[1:9]))
		return ts, Keyed{Timestamp: ts, Value: b[HeaderBytes:]}, nil
	}
	fixed := fixedLen(b)
	if fixed == 0 {
		return 0, k, corrupt(b)
	}
	appendTime = int64(binary.BigEndian.Uint64(b[1:9]))
	k.Timestamp = int64(binary.BigEndian.Uint64(b[9:17]))
	if b[0] == Version3 {
		k.Idempotent = true
		k.ProducerID = int64(binary.BigEndian.Uint64(b[17:25]))
		k.Epoch = int16(binary.BigEndian.Uint16(b[25:27]))
		k.Sequence = int32(binary.BigEndian.Uint32(b[27:31]))
	}
	r := b[fixed:]
	if k.Key, r, err = nullable(r); err != nil {
		return 0, k, err
	}
	if k.Value, r, err = nullable(r); err != nil {
		return 0, k, err
	}
	n, w := binary.Uvarint(r)
	// Each header takes at least two bytes: the count is bounded by what is left.
	if w <= 0 || n > uint64(len(r)) {
		return 0, k, fmt.Errorf("%w: bad header count", ErrCorrupt)
	}
	r = r[w:]
	if n > 0 {
		k.Headers = make([]Header, n)
	}
	for i := range k.Headers {
		kl, w := binary.Uvarint(r)
		if w <= 0 || kl > uint64(len(r)-w) {
			return 0, k, fmt.Errorf("%w: bad header key length", ErrCorrupt)
		}
		k.Headers[i].Key = r[w : w+int(kl) : w+int(kl)]
		if k.Headers[i].Value, r, err = nullable(r[w+int(kl):]); err != nil {
			return 0, k, err
		}
	}
	if len(r) != 0 {
		return 0, k, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(r))
	}
	return appendTime, k, nil
}

// fixedLen is the fixed head length of a keyed record (0: b is not one).
func fixedLen(b []byte) int {
	switch {
	case len(b) >= v2Fixed && b[0] == Version2:
		return v2Fixed
	case len(b) >= v3Fixed && b[0] == Version3:
		return v3Fixed
	}
	return 0
}

// value finds the value of a keyed record without decoding headers.
func value(b []byte) (int64, []byte, error) {
	fixed := fixedLen(b)
	if fixed == 0 {
		return 0, nil, corrupt(b)
	}
	_, r, err := nullable(b[fixed:])
	if err != nil {
		return 0, nil, err
	}
	v, _, err := nullable(r)
	return int64(binary.BigEndian.Uint64(b[1:9])), v, err
}

func nullable(r []byte) ([]byte, []byte, error) {
	n, w := binary.Varint(r)
	if w <= 0 || n < -1 || n > int64(len(r)-w) {
		return nil, nil, fmt.Errorf("%w: bad length", ErrCorrupt)
	}
	if n == -1 {
		return nil, r[w:], nil
	}
	end := w + int(n)
	return r[w:end:end], r[end:], nil
}

func corrupt(b []byte) error {
	return fmt.Errorf("%w: %d bytes, first byte %#x (want version %d, %d or %d)", ErrCorrupt, len(b), first(b), Version1, Version2, Version3)
}
