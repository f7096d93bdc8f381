package bench

import (
	"errors"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	for _, size := range []int{MinPayloadSize, 100, 4096} {
		buf := make([]byte, size)
		want := Message{Run: 0xdeadbeef, Total: 1_000_000, Seq: 999_999}
		p := EncodePayload(buf, want)
		got, err := DecodePayload(p)
		if err != nil {
			t.Fatalf("size %d: decode: %v", size, err)
		}
		if got != want {
			t.Fatalf("size %d: got %+v, want %+v", size, got, want)
		}
	}
}

func TestPayloadDetectsCorruption(t *testing.T) {
	p := EncodePayload(make([]byte, 100), Message{Run: 7, Total: 10, Seq: 3})
	for i := range p {
		q := append([]byte(nil), p...)
		q[i] ^= 0x01
		if _, err := DecodePayload(q); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipping byte %d (%q) went unnoticed: %v", i, p[i], err)
		}
	}
	if _, err := DecodePayload(p[:len(p)-1]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated payload went unnoticed")
	}
	if _, err := DecodePayload([]byte("hello")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("foreign payload went unnoticed")
	}
}

func FuzzDecodePayload(f *testing.F) {
	f.Add(EncodePayload(make([]byte, 64), Message{Run: 1, Total: 2, Seq: 1}))
	f.Add([]byte("W1 zz"))
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := DecodePayload(p)
		if err != nil {
			return
		}
		// Anything that decodes must re-encode to the same bytes.
		q := EncodePayload(make([]byte, len(p)), m)
		if string(q) != string(p) {
			t.Fatalf("decoded %+v from %q but it encodes to %q", m, p, q)
		}
	})
}
