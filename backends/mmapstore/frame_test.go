package mmapstore

import (
	"bytes"
	"errors"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		entries [][]byte
	}{
		{"one empty", [][]byte{{}}},
		{"one byte", [][]byte{{7}}},
		{"mixed", [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte{0}, 300), {0xff}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, batchLen(tt.entries)+5)
			n := putBatch(buf, 42, tt.entries)
			if n != batchLen(tt.entries) {
				t.Fatalf("putBatch wrote %d bytes, batchLen says %d", n, batchLen(tt.entries))
			}
			h, err := decodeBatchHeader(buf)
			if err != nil || h.first != 42 || int(h.count) != len(tt.entries) || int(h.bodyBytes) != n-batchHeaderLen {
				t.Fatalf("header = %+v, %v", h, err)
			}
			pos := uint64(batchHeaderLen)
			for i, want := range tt.entries {
				got, next, err := entryAt(buf[:n], pos)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("entry %d = %q, %v; want %q", i, got, err, want)
				}
				pos = next
			}
			if pos != uint64(n) {
				t.Fatalf("frames end at %d, batch at %d", pos, n)
			}
		})
	}
}

// Zeros (a preallocated, never written region) must never decode as a
// record: that is what makes the end of the data self-describing.
func TestZerosNeverDecode(t *testing.T) {
	z := make([]byte, 512)
	if _, err := decodeBatchHeader(z); !errors.Is(err, errFrame) {
		t.Fatalf("zero batch header decoded: %v", err)
	}
	if _, _, err := entryAt(z, 0); !errors.Is(err, errFrame) {
		t.Fatalf("zero entry frame decoded: %v", err)
	}
	if _, err := decodeFileHeader(z); !errors.Is(err, errFrame) {
		t.Fatalf("zero file header decoded: %v", err)
	}
	if c := decodeCheckpoint(z); c != (checkpoint{}) {
		t.Fatalf("zero checkpoint decoded as %+v", c)
	}
	if _, ok, err := decodeSealRecord(z); ok || err != nil {
		t.Fatalf("zero seal record: ok=%v err=%v, want not sealed", ok, err)
	}
}

func TestEveryBitFlipDetected(t *testing.T) {
	entries := [][]byte{[]byte("abc"), {}, []byte("0123456789")}
	buf := make([]byte, batchLen(entries))
	putBatch(buf, 3, entries)
	for bit := 0; bit < len(buf)*8; bit++ {
		b := bytes.Clone(buf)
		b[bit/8] ^= 1 << (bit % 8)
		if batchVerifies(b, 3, len(entries)) {
			t.Fatalf("flip of bit %d went undetected", bit)
		}
	}
	if !batchVerifies(buf, 3, len(entries)) {
		t.Fatal("intact batch does not verify")
	}
}

// batchVerifies applies the recovery scan's rules to one batch.
func batchVerifies(b []byte, first uint64, count int) bool {
	h, err := decodeBatchHeader(b)
	if err != nil || h.first != first || int(h.count) != count || int(h.bodyBytes) != len(b)-batchHeaderLen {
		return false
	}
	pos := uint64(batchHeaderLen)
	for range h.count {
		_, next, err := entryAt(b, pos)
		if err != nil {
			return false
		}
		pos = next
	}
	return pos == uint64(len(b))
}

func TestRecordsRoundTrip(t *testing.T) {
	var b [dataStart]byte
	putFileHeader(b[fileHeaderOff:], fileHeader{segment: 99})
	putCheckpoint(b[checkpointOff:], checkpoint{end: 1000, entries: 7})
	rec := sealRecord{entries: 7, bytes: 100, dataEnd: 1000, footerPos: 1000}
	putSealRecord(b[sealRecordOff:], rec)
	if h, err := decodeFileHeader(b[:]); err != nil || h.segment != 99 {
		t.Fatalf("file header: %+v, %v", h, err)
	}
	if c := decodeCheckpoint(b[checkpointOff:]); c != (checkpoint{end: 1000, entries: 7}) {
		t.Fatalf("checkpoint: %+v", c)
	}
	if got, ok, err := decodeSealRecord(b[sealRecordOff:]); err != nil || !ok || got != rec {
		t.Fatalf("seal record: %+v %v %v", got, ok, err)
	}
	b[sealRecordOff+9] ^= 1
	if _, _, err := decodeSealRecord(b[sealRecordOff:]); !errors.Is(err, errFrame) {
		t.Fatalf("damaged seal record: %v", err)
	}
}

func TestFooter(t *testing.T) {
	pos := []uint64{dataStart + 24, dataStart + 40, dataStart + 100}
	rec := sealRecord{entries: 3, dataEnd: dataStart + 200, footerPos: dataStart + 200}
	f := make([]byte, rec.footerLen())
	putFooter(f, func(i uint64) uint64 { return pos[i] }, 3)
	if err := checkFooter(f, rec); err != nil {
		t.Fatalf("checkFooter: %v", err)
	}
	for i := range pos {
		if footerPosition(f, uint64(i)) != pos[i] {
			t.Fatalf("position %d", i)
		}
	}
	f[20] ^= 1
	if err := checkFooter(f, rec); err == nil {
		t.Fatal("damaged footer verified")
	}
}

// FuzzDecode feeds arbitrary bytes to every decoder: no panics, and any
// batch that verifies re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	entries := [][]byte{[]byte("seed"), {}}
	seed := make([]byte, batchLen(entries))
	putBatch(seed, 0, entries)
	f.Add(seed)
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeFileHeader(b)
		decodeCheckpoint(b)
		decodeSealRecord(b)
		h, err := decodeBatchHeader(b)
		if err != nil {
			return
		}
		var got [][]byte
		pos := uint64(batchHeaderLen)
		end := min(uint64(len(b)), batchHeaderLen+uint64(h.bodyBytes))
		for range h.count {
			p, next, err := entryAt(b[:end], pos)
			if err != nil {
				return
			}
			got = append(got, p)
			pos = next
		}
		if pos != end {
			return
		}
		re := make([]byte, batchLen(got))
		putBatch(re, h.first, got)
		if !bytes.Equal(re, b[:end]) {
			t.Fatalf("verified batch does not re-encode to itself")
		}
	})
}

// FuzzScan runs the recovery scan over arbitrary data-area bytes: no
// panics, and every entry it accepts verifies and lies inside the valid end.
func FuzzScan(f *testing.F) {
	entries := [][]byte{[]byte("seed"), {}, []byte("x")}
	b := make([]byte, batchLen(entries)*2)
	n := putBatch(b, 0, entries)
	putBatch(b[n:], 3, entries)
	f.Add(b)
	f.Add(b[:n+5])
	f.Fuzz(func(t *testing.T, data []byte) {
		m := make([]byte, dataStart+len(data))
		copy(m[dataStart:], data)
		var ix index
		valid, _, err := scanBatches(m, &ix)
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		if ix.n != valid.entries || valid.end > uint64(len(m)) {
			t.Fatalf("scan says %+v with %d indexed entries", valid, ix.n)
		}
		var bytes uint64
		for i := range ix.n {
			p, _, err := entryAt(m[:valid.end], ix.get(i))
			if err != nil {
				t.Fatalf("accepted entry %d does not verify", i)
			}
			bytes += uint64(len(p))
		}
		if bytes != valid.bytes {
			t.Fatalf("payload bytes %d, scan says %d", bytes, valid.bytes)
		}
	})
}
