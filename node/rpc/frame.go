package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// MaxFrameBytes bounds one frame (a forwarded append batch fits with room:
// engine's default MaxBatchBytes is 64 MiB).
const MaxFrameBytes = 80 << 20

const headerBytes = 4 + 8 + 1

// Response status bytes.
const (
	statusOK  byte = 0
	statusErr byte = 1
)

// ErrFrameTooLarge: a peer announced a frame over MaxFrameBytes.
var ErrFrameTooLarge = errors.New("rpc: frame too large")

// Error is an error returned by the remote handler. Code is defined by the
// node package (0 = generic); Message is the remote error text.
type Error struct {
	Code    uint8
	Message string
}

func (e *Error) Error() string { return e.Message }

// appendFrame appends one encoded frame to dst.
func appendFrame(dst []byte, id uint64, kind byte, payload []byte) []byte {
	var h [headerBytes]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(8+1+len(payload)))
	binary.LittleEndian.PutUint64(h[4:12], id)
	h[12] = kind
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// Encoder is a payload that encodes itself straight into a connection's
// send buffer, saving the copy (and the allocation) of a payload encoded
// on its own first. EncodedLen is the exact length AppendTo appends.
type Encoder interface {
	EncodedLen() int
	AppendTo(dst []byte) []byte
}

// ErrPayloadTooLarge: a payload does not fit in one frame.
var ErrPayloadTooLarge = errors.New("rpc: payload too large")

// appendEncodedFrame appends one frame whose payload enc encodes.
func appendEncodedFrame(dst []byte, id uint64, kind byte, enc Encoder) ([]byte, error) {
	n := enc.EncodedLen()
	if n > MaxFrameBytes-9 {
		return dst, fmt.Errorf("%w: %d bytes", ErrPayloadTooLarge, n)
	}
	start := len(dst)
	dst = slices.Grow(dst, headerBytes+n)
	dst = appendFrame(dst, id, kind, nil)
	dst = enc.AppendTo(dst)
	if got := len(dst) - start - headerBytes; got != n {
		panic(fmt.Sprintf("rpc: encoder appended %d bytes, announced %d", got, n))
	}
	binary.LittleEndian.PutUint32(dst[start:start+4], uint32(8+1+n))
	return dst, nil
}

// readFrame reads one frame. The payload is freshly allocated.
func readFrame(r io.Reader, hdr *[headerBytes]byte) (id uint64, kind byte, payload []byte, err error) {
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[0:4])
	if n < 9 {
		return 0, 0, nil, fmt.Errorf("rpc: frame length %d: %w", n, io.ErrUnexpectedEOF)
	}
	if n > MaxFrameBytes {
		return 0, 0, nil, fmt.Errorf("rpc: frame of %d bytes: %w", n, ErrFrameTooLarge)
	}
	id = binary.LittleEndian.Uint64(hdr[4:12])
	kind = hdr[12]
	payload = make([]byte, n-9)
	if _, err = io.ReadFull(r, payload); err != nil {
		return 0, 0, nil, err
	}
	return id, kind, payload, nil
}

func encodeError(err error) []byte {
	var re *Error
	code := uint8(0)
	if errors.As(err, &re) {
		code = re.Code
	}
	msg := err.Error()
	out := make([]byte, 0, 1+len(msg))
	out = append(out, code)
	return append(out, msg...)
}

func decodeError(b []byte) *Error {
	if len(b) == 0 {
		return &Error{Message: "rpc: empty error"}
	}
	return &Error{Code: b[0], Message: string(b[1:])}
}
