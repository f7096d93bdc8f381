package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// DefaultMaxFrameBytes is the default largest frame (length prefix excluded)
// either side accepts: room for a 1 MiB payload plus the "PUT <topic> "
// header with a topic of the maximum length.
const DefaultMaxFrameBytes = 1<<20 + 512

// HeaderBytes is the size of the little-endian length prefix.
const HeaderBytes = 4

var (
	// ErrFrameLength reports a zero or oversized length prefix. Match it
	// with errors.Is; the concrete error is a *FrameLengthError.
	ErrFrameLength = errors.New("invalid frame length")
)

// FrameLengthError is returned by ReadFrame for a length prefix of zero or
// above the maximum. Only the 4-byte prefix has been consumed. After a zero
// length the stream is still in sync (there is no body); after an oversized
// one it is not, because skipping the body would mean waiting for up to 4 GiB
// from a peer that is probably not speaking this protocol.
type FrameLengthError struct {
	Length uint32
	Max    int
}

func (e *FrameLengthError) Error() string {
	return fmt.Sprintf("invalid frame length %d (allowed 1..%d)", e.Length, e.Max)
}

// Is makes errors.Is(err, ErrFrameLength) true.
func (e *FrameLengthError) Is(target error) bool { return target == ErrFrameLength }

// Resyncable reports whether the stream is still positioned at a frame
// boundary (true only for a zero length). The node's listener closes the
// connection either way (DESIGN.md §5); a tolerant reader may go on.
func (e *FrameLengthError) Resyncable() bool { return e.Length == 0 }

// ReadFrame reads one frame and returns its body in a new slice the caller
// owns. maxBytes <= 0 means DefaultMaxFrameBytes.
//
// Errors: io.EOF when the stream ends cleanly before a frame starts;
// io.ErrUnexpectedEOF when it ends inside a frame; *FrameLengthError
// (errors.Is ErrFrameLength) for a zero or oversized length; otherwise the
// reader's error. The body is not checked for UTF-8 (ParseRequest does).
func ReadFrame(r *bufio.Reader, maxBytes int) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxFrameBytes
	}
	var hdr [HeaderBytes]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err // io.EOF or io.ErrUnexpectedEOF, as io.ReadFull defines
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n == 0 || uint64(n) > uint64(maxBytes) {
		return nil, &FrameLengthError{Length: n, Max: maxBytes}
	}
	// The length is bounded by maxBytes above, so this allocation is too.
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}

// FrameBuffered reports whether r already holds one complete frame (prefix
// and body) in its buffer, so that reading it will not block. The server uses
// it to gather pipelined requests into one batch without waiting for more.
// A frame larger than r's buffer is never reported as buffered.
func FrameBuffered(r *bufio.Reader) bool {
	b := r.Buffered()
	if b < HeaderBytes {
		return false
	}
	hdr, err := r.Peek(HeaderBytes)
	if err != nil {
		return false
	}
	n := binary.LittleEndian.Uint32(hdr)
	// A zero or oversized length is "complete" too: ReadFrame answers it
	// without blocking.
	return n == 0 || uint64(b-HeaderBytes) >= uint64(n)
}

// WriteFrame writes payload as one frame. It does not flush. An empty
// payload or one longer than a uint32 can describe is rejected, because no
// peer could read it back.
func WriteFrame(w io.Writer, payload []byte) error {
	if len(payload) == 0 || uint64(len(payload)) > math.MaxUint32 {
		return &FrameLengthError{Length: uint32(min(uint64(len(payload)), math.MaxUint32)), Max: math.MaxUint32}
	}
	var hdr [HeaderBytes]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// AppendFrame appends payload as one frame to dst. It is the allocation-free
// twin of WriteFrame for callers that build a batch in one buffer.
func AppendFrame(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// beginFrame appends a placeholder length prefix and returns where it is, so
// an encoder can write the body in place and patch the length afterwards.
func beginFrame(dst []byte) ([]byte, int) {
	at := len(dst)
	return append(dst, 0, 0, 0, 0), at
}

func endFrame(dst []byte, at int) []byte {
	binary.LittleEndian.PutUint32(dst[at:], uint32(len(dst)-at-HeaderBytes))
	return dst
}
