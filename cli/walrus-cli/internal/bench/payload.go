package bench

import (
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// Payload layout (ASCII, so always valid UTF-8 as the protocol requires):
//
//	"W1 " run(8 hex) " " total(10 hex) " " seq(10 hex) " " crc(8 hex) " " filler...
//
// The run id lets consume tell this run's messages from leftovers of another
// run in the same topics; total lets consume know how many to expect without
// being told; the CRC (Castagnoli) covers run, total, seq and the filler, so
// any flipped, truncated or spliced byte is caught. The filler is derived from
// seq so it costs no randomness on the hot path.
const (
	payloadMagic     = "W1 "
	headerLen        = 3 + 9 + 11 + 11 + 9
	MinPayloadSize   = headerLen + 1
	maxSeq           = 1<<40 - 1
	crcFieldOffset   = 3 + 9 + 11 + 11
	fillerOffset     = headerLen
	runFieldOffset   = 3
	totalFieldOffset = 3 + 9
	seqFieldOffset   = 3 + 9 + 11
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// alphabetRun is "abc...z" repeated, long enough that one copy fills the
// filler of a typical payload; read-only.
var alphabetRun = []byte(strings.Repeat("abcdefghijklmnopqrstuvwxyz", 160))

// ErrCorrupt reports a payload that does not decode or whose checksum fails.
var ErrCorrupt = errors.New("bench: corrupt payload")

// Message is what a decoded payload says about itself.
type Message struct {
	Run   uint32
	Total uint64
	Seq   uint64
}

const hexDigits = "0123456789abcdef"

func putHex(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

func parseHex(src []byte) (uint64, bool) {
	var v uint64
	for _, c := range src {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}

// EncodePayload fills buf (whose length is the payload size, at least
// MinPayloadSize) with message m and returns it.
func EncodePayload(buf []byte, m Message) []byte {
	if len(buf) < MinPayloadSize {
		panic("bench: payload buffer shorter than MinPayloadSize")
	}
	copy(buf, payloadMagic)
	putHex(buf[runFieldOffset:runFieldOffset+8], uint64(m.Run))
	buf[runFieldOffset+8] = ' '
	putHex(buf[totalFieldOffset:totalFieldOffset+10], m.Total)
	buf[totalFieldOffset+10] = ' '
	putHex(buf[seqFieldOffset:seqFieldOffset+10], m.Seq)
	buf[seqFieldOffset+10] = ' '
	buf[crcFieldOffset+8] = ' '
	// The filler is the alphabet repeated, starting at letter seq%26:
	// copied from a precomputed run instead of written byte by byte.
	for off, start := fillerOffset, int(m.Seq%26); off < len(buf); start = 0 {
		n := copy(buf[off:], alphabetRun[start:])
		off += n
	}
	putHex(buf[crcFieldOffset:crcFieldOffset+8], uint64(payloadCRC(buf)))
	return buf
}

func payloadCRC(buf []byte) uint32 {
	c := crc32.Update(0, castagnoli, buf[runFieldOffset:crcFieldOffset])
	return crc32.Update(c, castagnoli, buf[fillerOffset:])
}

// DecodePayload checks and decodes a payload made by EncodePayload.
func DecodePayload(p []byte) (Message, error) {
	if len(p) < MinPayloadSize || string(p[:3]) != payloadMagic ||
		p[runFieldOffset+8] != ' ' || p[totalFieldOffset+10] != ' ' ||
		p[seqFieldOffset+10] != ' ' || p[crcFieldOffset+8] != ' ' {
		return Message{}, fmt.Errorf("%w: bad header (len %d)", ErrCorrupt, len(p))
	}
	run, ok1 := parseHex(p[runFieldOffset : runFieldOffset+8])
	total, ok2 := parseHex(p[totalFieldOffset : totalFieldOffset+10])
	seq, ok3 := parseHex(p[seqFieldOffset : seqFieldOffset+10])
	sum, ok4 := parseHex(p[crcFieldOffset : crcFieldOffset+8])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return Message{}, fmt.Errorf("%w: bad header field", ErrCorrupt)
	}
	if got := payloadCRC(p); uint64(got) != sum {
		return Message{}, fmt.Errorf("%w: crc %08x, header says %08x", ErrCorrupt, got, sum)
	}
	if seq >= total {
		return Message{}, fmt.Errorf("%w: seq %d not below total %d", ErrCorrupt, seq, total)
	}
	return Message{Run: uint32(run), Total: total, Seq: seq}, nil
}

// TopicName is the name of bench topic i of prefix.
func TopicName(prefix string, i int) string {
	return prefix + "-" + strconv.Itoa(i)
}
