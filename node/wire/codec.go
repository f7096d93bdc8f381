package wire

import (
	"encoding/binary"
	"fmt"
)

type enc struct{ b []byte }

func (e *enc) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) u8(v byte)    { e.b = append(e.b, v) }
func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) str(s string) { e.u32(uint32(len(s))); e.b = append(e.b, s...) }
func (e *enc) bytes(p []byte) {
	e.u32(uint32(len(p)))
	e.b = append(e.b, p...)
}
func (e *enc) flag(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *enc) list(ps [][]byte) {
	e.u32(uint32(len(ps)))
	for _, p := range ps {
		e.bytes(p)
	}
}

// listSize is the encoded size of a list, for preallocation.
func listSize(ps [][]byte) int {
	n := 4
	for _, p := range ps {
		n += 4 + len(p)
	}
	return n
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) need(n int) bool {
	if d.err != nil {
		return false
	}
	if len(d.b) < n {
		d.err = ErrShortPayload
		return false
	}
	return true
}

func (d *dec) u64() uint64 {
	if !d.need(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *dec) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *dec) u8() byte {
	if !d.need(1) {
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *dec) bytes() []byte {
	n := d.u32()
	if !d.need(int(n)) {
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) str() string { return string(d.bytes()) }

func (d *dec) list() [][]byte {
	n := d.u32()
	// Each element takes at least 4 bytes: bound n before allocating.
	if d.err != nil || uint64(n)*4 > uint64(len(d.b)) {
		if d.err == nil {
			d.err = ErrShortPayload
		}
		return nil
	}
	out := make([][]byte, 0, n)
	for range n {
		p := d.bytes()
		if d.err != nil {
			return nil
		}
		out = append(out, p)
	}
	return out
}

// done reports a decoding error. Trailing bytes are ignored on purpose:
// a newer sender may append optional fields an older receiver skips.
func (d *dec) done(what string) error {
	if d.err != nil {
		return fmt.Errorf("wire: decode %s: %w", what, d.err)
	}
	return nil
}
