// Package record owns the stored form of an entry: the bytes a segment
// leader hands to the SegmentStore for each client payload. A timed record
// is one version byte, the append time (Unix ms, big-endian int64) and the
// payload. Segments written before records existed hold bare payloads; the
// metadata says from which segment on a topic's entries are timed
// (metadata.Topic.TimedFrom), so a bare payload is never read as a record.
package record

import (
	"encoding/binary"
	"errors"
)

// Version1 is the first byte of a timed record.
const Version1 byte = 1

// HeaderBytes is the overhead of a timed record.
const HeaderBytes = 9

// ErrCorrupt reports stored bytes that are not a record.
var ErrCorrupt = errors.New("corrupt record")

// AppendTimed appends the record of payload stamped ts to dst.
func AppendTimed(dst []byte, ts int64, payload []byte) []byte {
	dst = append(dst, Version1)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	return append(dst, payload...)
}

// EncodeBatch turns payloads into timed records stamped ts, in one
// allocation; the records alias that one buffer.
func EncodeBatch(payloads [][]byte, ts int64) [][]byte {
	n := 0
	for _, p := range payloads {
		n += HeaderBytes + len(p)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(payloads))
	for i, p := range payloads {
		start := len(buf)
		buf = AppendTimed(buf, ts, p)
		out[i] = buf[start:len(buf):len(buf)]
	}
	return out
}

// Decode splits a stored entry: a timed record yields its time and payload
// (aliasing b); a keyed one (Version2) its append time and value (nil for a
// null value); an untimed one (timed false) is all payload, time 0.
func Decode(b []byte, timed bool) (ts int64, payload []byte, err error) {
	if !timed {
		return 0, b, nil
	}
	if len(b) >= HeaderBytes && b[0] == Version1 {
		return int64(binary.BigEndian.Uint64(b[1:9])), b[HeaderBytes:], nil
	}
	if len(b) > 0 && (b[0] == Version2 || b[0] == Version3) {
		return value(b)
	}
	return 0, nil, corrupt(b)
}

// Payloads strips the records of entries in place and returns them.
func Payloads(entries [][]byte, timed bool) ([][]byte, error) {
	if !timed {
		return entries, nil
	}
	for i, e := range entries {
		_, p, err := Decode(e, true)
		if err != nil {
			return nil, err
		}
		entries[i] = p
	}
	return entries, nil
}

func first(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// Entry is one entry of a topic as a reader sees it: its topic-wide
// offset, its time (0 for an untimed entry) and its payload.
type Entry struct {
	Offset  uint64
	Time    int64
	Payload []byte
	// Stored is the whole stored record (aliasing; nil for untimed
	// entries): the Kafka listener decodes keys and headers from it.
	Stored []byte
	// Deliveries counts how often a consumer group was handed it (READ
	// only; 0 elsewhere).
	Deliveries uint32
}

// Clock stamps appends: the wall clock in Unix ms, but never below the
// last time it gave or its floor, so times never decrease along a topic
// even when the next segment's leader has a slower clock.
type Clock struct{ Last int64 }

// Next returns the time for the next batch.
func (c *Clock) Next(nowMs int64) int64 {
	c.Last = max(c.Last, nowMs)
	return c.Last
}

// Bytes is the total length of entries (payload bytes for the metrics and
// the per-append bounds).
func Bytes(entries [][]byte) int {
	b := 0
	for _, e := range entries {
		b += len(e)
	}
	return b
}
