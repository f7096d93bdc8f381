package shim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Data channel framing, little-endian. Every frame starts with a u32 length
// of what follows it.
//
//	request:  u32 len | u64 id | u64 segment | u16 topic len | topic
//	          | u32 n | n x u32 entry length | payload (sum of the lengths)
//	response: u32 len | u64 id | u8 1 | u64 first                  (ok)
//	          u32 len | u64 id | u8 0 | u32 code | u16 reason len | reason
//	          | u32 message len | message                          (error)
//
// Decoders check every length against what the frame holds and against the
// limits before allocating; they never panic on bad input.

// tokenBytes is the size of the channel's shared secret.
const tokenBytes = 32

// errFrame marks a malformed frame; the connection is dropped.
var errFrame = errors.New("malformed data channel frame")

type dcRequest struct {
	id      uint64
	segment uint64
	topic   string
	entries [][]byte
}

// appendRequestFrame encodes a request into buf (reused when large enough).
func appendRequestFrame(buf []byte, id uint64, topic string, segment uint64, entries [][]byte) []byte {
	size := 8 + 8 + 2 + len(topic) + 4 + 4*len(entries)
	for _, e := range entries {
		size += len(e)
	}
	buf = binary.LittleEndian.AppendUint32(buf[:0], uint32(size))
	buf = binary.LittleEndian.AppendUint64(buf, id)
	buf = binary.LittleEndian.AppendUint64(buf, segment)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(topic)))
	buf = append(buf, topic...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(entries)))
	for _, e := range entries {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(e)))
	}
	for _, e := range entries {
		buf = append(buf, e...)
	}
	return buf
}

// requestFrameFits reports whether a batch can be framed at all (lengths
// fit their fields); larger batches use the gRPC path.
func requestFrameFits(topic string, entries [][]byte, total uint64) bool {
	return len(topic) <= math.MaxUint16 && len(entries) <= MaxBatchEntries && total <= ChunkBytes
}

// decodeRequestHead parses what every request frame starts with: its id,
// segment and topic (u16 length, bytes), and checks that at least tail
// bytes follow, which it returns.
func decodeRequestHead(body []byte, what string, tail int) (id, segment uint64, topic string, rest []byte, err error) {
	if len(body) < 8+8+2 {
		return 0, 0, "", nil, fmt.Errorf("%w: %s of %d bytes", errFrame, what, len(body))
	}
	id = binary.LittleEndian.Uint64(body)
	segment = binary.LittleEndian.Uint64(body[8:])
	tl := int(binary.LittleEndian.Uint16(body[16:]))
	rest = body[18:]
	if len(rest) < tl+tail {
		return 0, 0, "", nil, fmt.Errorf("%w: %s with a %d-byte topic in %d bytes", errFrame, what, tl, len(rest))
	}
	return id, segment, string(rest[:tl]), rest[tl:], nil
}

// decodeRequest parses the body of a request frame (after the length). The
// entries alias body, with their capacity cut to their length.
func decodeRequest(body []byte) (dcRequest, error) {
	var r dcRequest
	var rest []byte
	var err error
	r.id, r.segment, r.topic, rest, err = decodeRequestHead(body, "request", 4)
	if err != nil {
		return r, err
	}
	n := int(binary.LittleEndian.Uint32(rest))
	rest = rest[4:]
	if n > MaxBatchEntries || n > len(rest)/4 {
		return r, fmt.Errorf("%w: %d entries announced in %d bytes", errFrame, n, len(rest))
	}
	sizes, data := rest[:4*n], rest[4*n:]
	r.entries = make([][]byte, n)
	off := 0
	for i := range n {
		l := int(binary.LittleEndian.Uint32(sizes[4*i:]))
		if l > len(data)-off {
			return r, fmt.Errorf("%w: entry %d of %d bytes past the payload", errFrame, i, l)
		}
		r.entries[i] = data[off : off+l : off+l]
		off += l
	}
	if off != len(data) {
		return r, fmt.Errorf("%w: entry lengths sum to %d, payload is %d bytes", errFrame, off, len(data))
	}
	return r, nil
}

type dcResponse struct {
	id      uint64
	first   uint64
	code    uint32
	reason  string
	message string
	ok      bool
}

func appendResponseFrame(buf []byte, r dcResponse) []byte {
	size := 8 + 1 + 8
	if !r.ok {
		size = 8 + 1 + 4 + 2 + len(r.reason) + 4 + len(r.message)
	}
	buf = binary.LittleEndian.AppendUint32(buf[:0], uint32(size))
	buf = binary.LittleEndian.AppendUint64(buf, r.id)
	if r.ok {
		buf = append(buf, 1)
		return binary.LittleEndian.AppendUint64(buf, r.first)
	}
	buf = append(buf, 0)
	buf = binary.LittleEndian.AppendUint32(buf, r.code)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(r.reason)))
	buf = append(buf, r.reason...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(r.message)))
	return append(buf, r.message...)
}

func decodeResponse(body []byte) (dcResponse, error) {
	var r dcResponse
	if len(body) < 9 {
		return r, fmt.Errorf("%w: response of %d bytes", errFrame, len(body))
	}
	r.id = binary.LittleEndian.Uint64(body)
	if body[8] == 1 {
		if len(body) != 17 {
			return r, fmt.Errorf("%w: ok response of %d bytes", errFrame, len(body))
		}
		r.ok, r.first = true, binary.LittleEndian.Uint64(body[9:])
		return r, nil
	}
	rest := body[9:]
	if len(rest) < 6 {
		return r, fmt.Errorf("%w: short error response", errFrame)
	}
	r.code = binary.LittleEndian.Uint32(rest)
	rl := int(binary.LittleEndian.Uint16(rest[4:]))
	rest = rest[6:]
	if len(rest) < rl+4 {
		return r, fmt.Errorf("%w: error reason of %d bytes in %d", errFrame, rl, len(rest))
	}
	r.reason = string(rest[:rl])
	rest = rest[rl:]
	ml := int(binary.LittleEndian.Uint32(rest))
	rest = rest[4:]
	if ml != len(rest) {
		return r, fmt.Errorf("%w: error message of %d bytes in %d", errFrame, ml, len(rest))
	}
	r.message = string(rest)
	return r, nil
}
