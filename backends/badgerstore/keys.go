package badgerstore

import (
	"encoding/binary"
	"fmt"

	"github.com/walrus-go/walrus/engine"
)

// Key layout (see README.md). Every key starts with a one-byte kind, then
// the topic terminated by 0x00, then the big-endian segment number:
//
//	entry:    'e' topic 0x00 segment(8) offset(8)  -> payload bytes
//	meta:     'm' topic 0x00 segment(8)            -> metaValue
//	deleting: 'd' topic 0x00 segment(8)            -> empty (delete in progress)
//	format:   'v'                                  -> formatVersion
//
// engine.ValidateTopic rejects NUL, so the terminator cannot occur inside a
// topic: the prefix of topic "a" ('e' "a" 0x00) is never a prefix of topic
// "ab", and because 0x00 sorts before every byte a topic may contain, byte
// order of keys is (topic, segment, offset) order, exactly what List and
// sequential reads want. Fixed-width big-endian numbers sort numerically.
const (
	kindEntry    byte = 'e'
	kindMeta     byte = 'm'
	kindDeleting byte = 'd'
)

// formatKey holds formatVersion; Open refuses a directory written by an
// incompatible layout instead of misreading it.
var formatKey = []byte{'v'}

const formatVersion = "walrus-badgerstore/1"

// segmentPrefix is kind topic 0x00 segment(8).
func segmentPrefix(kind byte, id engine.SegmentID, extra int) []byte {
	k := make([]byte, 0, 1+len(id.Topic)+1+8+extra)
	k = append(k, kind)
	k = append(k, id.Topic...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, id.Segment)
}

// topicPrefix is kind topic 0x00, or just kind for every topic.
func topicPrefix(kind byte, topic string) []byte {
	if topic == "" {
		return []byte{kind}
	}
	k := make([]byte, 0, 1+len(topic)+1)
	k = append(k, kind)
	k = append(k, topic...)
	return append(k, 0)
}

func metaKey(id engine.SegmentID) []byte     { return segmentPrefix(kindMeta, id, 0) }
func deletingKey(id engine.SegmentID) []byte { return segmentPrefix(kindDeleting, id, 0) }

// entryKeyPrefix is the prefix shared by every entry of the segment.
func entryKeyPrefix(id engine.SegmentID) []byte { return segmentPrefix(kindEntry, id, 8) }

// appendOffset appends the big-endian offset to an entry key prefix.
func appendOffset(prefix []byte, offset uint64) []byte {
	return binary.BigEndian.AppendUint64(prefix, offset)
}

func entryKey(id engine.SegmentID, offset uint64) []byte {
	return appendOffset(entryKeyPrefix(id), offset)
}

// parseSegmentKey decodes a meta or deleting key (kind topic 0x00 seg).
func parseSegmentKey(key []byte) (kind byte, id engine.SegmentID, err error) {
	if len(key) < 1+1+1+8 {
		return 0, id, fmt.Errorf("key %x too short: %w", key, engine.ErrCorrupt)
	}
	topic := key[1 : len(key)-9]
	if key[len(key)-9] != 0 {
		return 0, id, fmt.Errorf("key %x has no topic terminator: %w", key, engine.ErrCorrupt)
	}
	id = engine.SegmentID{Topic: string(topic), Segment: binary.BigEndian.Uint64(key[len(key)-8:])}
	if err := engine.ValidateTopic(id.Topic); err != nil {
		return 0, id, fmt.Errorf("key %x: %w: %w", key, engine.ErrCorrupt, err)
	}
	return key[0], id, nil
}

// entryOffset returns the offset of an entry key of the segment whose entry
// prefix is prefix.
func entryOffset(prefix, key []byte) (uint64, error) {
	if len(key) != len(prefix)+8 {
		return 0, fmt.Errorf("entry key %x has the wrong length: %w", key, engine.ErrCorrupt)
	}
	return binary.BigEndian.Uint64(key[len(prefix):]), nil
}

// metaValue is the committed state of a segment. It is written in the same
// badger transaction as the entries it counts, so readers that bound
// themselves by Entries never see part of a batch.
type metaValue struct {
	Entries uint64
	Bytes   uint64
	Sealed  bool
}

const metaValueLen = 8 + 8 + 1

func (m metaValue) encode() []byte {
	b := make([]byte, 0, metaValueLen)
	b = binary.BigEndian.AppendUint64(b, m.Entries)
	b = binary.BigEndian.AppendUint64(b, m.Bytes)
	if m.Sealed {
		return append(b, 1)
	}
	return append(b, 0)
}

func decodeMeta(b []byte) (metaValue, error) {
	if len(b) != metaValueLen || b[16] > 1 {
		return metaValue{}, fmt.Errorf("segment meta %x: %w", b, engine.ErrCorrupt)
	}
	return metaValue{
		Entries: binary.BigEndian.Uint64(b[0:]),
		Bytes:   binary.BigEndian.Uint64(b[8:]),
		Sealed:  b[16] == 1,
	}, nil
}
