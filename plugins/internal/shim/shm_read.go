package shim

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"

	"google.golang.org/grpc/codes"

	"github.com/walrus-go/walrus/engine"
)

// Reads through the ring. A slot's kind word says what its frame is:
//
//	read request:  u32 len | u64 id | u64 segment | u16 topic len | topic
//	               | u64 offset | i64 max entries | i64 max bytes
//	read response: u32 len | u64 id | u8 2 (does not fit the slot: ask
//	               over gRPC) | u8 0 + error as in an append response
//	               | u8 1 | u32 n | n x u32 entry length | payload
//
// A result larger than a slot is not chunked: the host repeats the read
// over the gRPC Read stream, which chunks (one extra store read, only for
// results over 256 KiB, where the copy dominates anyway).

const (
	slotKindAppend = 0
	slotKindRead   = 1

	readTooLarge = 2
)

func (r *shmRing) kind(i int) *atomic.Uint32 {
	return r.word(shmHeaderBytes + i*shmControlBytes + 12)
}

type dcReadRequest struct {
	id         uint64
	segment    uint64
	topic      string
	offset     uint64
	maxEntries int64
	maxBytes   int64
}

func appendReadRequestFrame(buf []byte, q dcReadRequest) []byte {
	size := 8 + 8 + 2 + len(q.topic) + 8 + 8 + 8
	buf = binary.LittleEndian.AppendUint32(buf[:0], uint32(size))
	buf = binary.LittleEndian.AppendUint64(buf, q.id)
	buf = binary.LittleEndian.AppendUint64(buf, q.segment)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(q.topic)))
	buf = append(buf, q.topic...)
	buf = binary.LittleEndian.AppendUint64(buf, q.offset)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(q.maxEntries))
	return binary.LittleEndian.AppendUint64(buf, uint64(q.maxBytes))
}

func decodeReadRequest(body []byte) (dcReadRequest, error) {
	var q dcReadRequest
	var rest []byte
	var err error
	q.id, q.segment, q.topic, rest, err = decodeRequestHead(body, "read request", 24)
	if err != nil {
		return q, err
	}
	if len(rest) != 24 {
		return q, fmt.Errorf("%w: read request with %d bytes after its topic, want 24", errFrame, len(rest))
	}
	q.offset = binary.LittleEndian.Uint64(rest)
	q.maxEntries = int64(binary.LittleEndian.Uint64(rest[8:]))
	q.maxBytes = int64(binary.LittleEndian.Uint64(rest[16:]))
	return q, nil
}

// appendReadResponseFrame encodes entries into buf (a slot), or the
// too-large marker when they do not fit its capacity.
func appendReadResponseFrame(buf []byte, id uint64, entries [][]byte) []byte {
	size := 8 + 1 + 4 + 4*len(entries)
	for _, e := range entries {
		size += len(e)
	}
	if 4+size > cap(buf) || len(entries) > MaxBatchEntries {
		buf = binary.LittleEndian.AppendUint32(buf[:0], 8+1)
		buf = binary.LittleEndian.AppendUint64(buf, id)
		return append(buf, readTooLarge)
	}
	buf = binary.LittleEndian.AppendUint32(buf[:0], uint32(size))
	buf = binary.LittleEndian.AppendUint64(buf, id)
	buf = append(buf, 1)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(entries)))
	for _, e := range entries {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(e)))
	}
	for _, e := range entries {
		buf = append(buf, e...)
	}
	return buf
}

// shmReadResult is a decoded read response: entries (copied out of the
// slot), a remote error, or tooLarge.
type shmReadResult struct {
	entries  [][]byte
	remote   error // the plugin's error, as the gRPC path returns it
	corrupt  error // the answer breaks the read contract
	tooLarge bool
}

// decodeReadResponse checks a read answer against the read's bounds (as
// Client.Read does for the gRPC stream) and copies the entries out.
func decodeReadResponse(body []byte, wantID, maxEntries, maxBytes, maxEntryBytes uint64) (shmReadResult, error) {
	if len(body) < 9 || binary.LittleEndian.Uint64(body) != wantID {
		return shmReadResult{}, fmt.Errorf("%w: read response of %d bytes for another request", errFrame, len(body))
	}
	switch body[8] {
	case readTooLarge:
		return shmReadResult{tooLarge: true}, nil
	case 0:
		r, err := decodeResponse(body)
		if err != nil {
			return shmReadResult{}, err
		}
		return shmReadResult{remote: remoteError(codes.Code(r.code), r.reason, r.message)}, nil
	case 1:
	default:
		return shmReadResult{}, fmt.Errorf("%w: read response status %d", errFrame, body[8])
	}
	rest := body[9:]
	if len(rest) < 4 {
		return shmReadResult{}, fmt.Errorf("%w: short read response", errFrame)
	}
	n := uint64(binary.LittleEndian.Uint32(rest))
	rest = rest[4:]
	if n > uint64(len(rest)/4) {
		return shmReadResult{}, fmt.Errorf("%w: %d entries announced in %d bytes", errFrame, n, len(rest))
	}
	sizes := make([]uint32, n)
	for i := range sizes {
		sizes[i] = binary.LittleEndian.Uint32(rest[4*i:])
	}
	payload := rest[4*n:]
	// A result may exceed maxBytes only when it is one entry (the
	// at-least-one rule), and that entry is bounded by MaxEntryBytes.
	budget := maxBytes
	if n == 1 {
		budget = max(budget, maxEntryBytes)
	}
	asm, err := newAssembler(n, uint64(len(payload)), maxEntries, budget)
	if err != nil {
		return shmReadResult{corrupt: fmt.Errorf("result breaks the read contract: %v: %w", err, engine.ErrCorrupt)}, nil
	}
	if err := asm.add(sizes, append([]byte(nil), payload...)); err != nil {
		return shmReadResult{corrupt: fmt.Errorf("%v: %w", err, engine.ErrCorrupt)}, nil
	}
	entries, err := asm.finish()
	if err != nil {
		return shmReadResult{corrupt: fmt.Errorf("%v: %w", err, engine.ErrCorrupt)}, nil
	}
	return shmReadResult{entries: entries}, nil
}

// shmReadFits reports whether a read request fits a slot.
func shmReadFits(topic string) bool { return len(topic) <= math.MaxUint16 }

// shmRead reads through a slot. ok is false when the result does not fit
// a slot: the caller repeats the read over gRPC.
func (dc *dataClient) shmRead(ctx context.Context, what string, id engine.SegmentID, offset uint64, maxEntries, maxBytes int, maxEntryBytes uint64) (entries [][]byte, ok bool, err error) {
	i, start, err := dc.shmSubmit(ctx, what, slotKindRead, func(data []byte, i int) []byte {
		return appendReadRequestFrame(data, dcReadRequest{
			id: uint64(i), segment: id.Segment, topic: id.Topic, offset: offset, maxEntries: int64(maxEntries), maxBytes: int64(maxBytes),
		})
	})
	if err != nil {
		return nil, true, err
	}
	defer dc.shm.calls.Done()
	var res shmReadResult
	err = dc.shmWait(ctx, what, i, start, func(body []byte) error {
		var derr error
		res, derr = decodeReadResponse(body, uint64(i), uint64(max(maxEntries, 0)), uint64(max(maxBytes, 0)), maxEntryBytes)
		return derr
	})
	switch {
	case err != nil:
		return nil, true, err
	case res.tooLarge:
		return nil, false, nil
	case res.remote != nil:
		return nil, true, res.remote
	case res.corrupt != nil:
		return nil, true, fmt.Errorf("plugin: %s: %w", what, res.corrupt)
	}
	return res.entries, true, nil
}

// shmHandleRead runs the read in slot i and publishes its answer there.
func (d *dataServer) shmHandleRead(ctx context.Context, ring *shmRing, i int, body []byte) ([]byte, error) {
	// The request was copied out of the slot (body); the answer overwrites it.
	q, err := decodeReadRequest(body)
	if err != nil {
		return nil, err
	}
	maxEntries := min(q.maxEntries, MaxBatchEntries) // as Server.Read
	entries, err := d.store.Read(ctx, engine.SegmentID{Topic: q.topic, Segment: q.segment}, q.offset, int(maxEntries), int(min(q.maxBytes, math.MaxInt)))
	data := ring.data(i)
	if err != nil {
		code, reason := classify(err)
		return appendResponseFrame(data[:0], dcResponse{id: q.id, code: uint32(code), reason: truncate(reason), message: truncate(err.Error())}), nil
	}
	return appendReadResponseFrame(data[:0], q.id, entries), nil
}
