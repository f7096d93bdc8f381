package record

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	payloads := [][]byte{[]byte("a"), {}, []byte("hello world")}
	recs := EncodeBatch(payloads, 1733300000123)
	for i, r := range recs {
		ts, p, err := Decode(r, true)
		if err != nil || ts != 1733300000123 || !bytes.Equal(p, payloads[i]) {
			t.Fatalf("record %d: ts %d payload %q err %v", i, ts, p, err)
		}
	}
	// Appending to one record must not overwrite the next one.
	_ = append(recs[0], 'x')
	if _, p, _ := Decode(recs[1], true); len(p) != 0 {
		t.Fatalf("records alias: %q", p)
	}
}

func TestUntimedIsAllPayload(t *testing.T) {
	ts, p, err := Decode([]byte{1, 2, 3}, false)
	if err != nil || ts != 0 || string(p) != "\x01\x02\x03" {
		t.Fatalf("got %d %q %v", ts, p, err)
	}
}

func TestCorrupt(t *testing.T) {
	for _, b := range [][]byte{nil, {1, 2}, {2, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, _, err := Decode(b, true); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v: err %v", b, err)
		}
	}
	if _, err := Payloads([][]byte{AppendTimed(nil, 1, []byte("x")), {9}}, true); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Payloads: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(AppendTimed(nil, 5, []byte("p")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, p, err := Decode(b, true)
		if err != nil {
			return
		}
		if again := AppendTimed(nil, ts, p); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %x vs %x", again, b)
		}
	})
}

func TestClockNeverGoesBack(t *testing.T) {
	c := Clock{Last: 100}
	for _, c2 := range []struct{ now, want int64 }{{50, 100}, {120, 120}, {110, 120}, {130, 130}} {
		if got := c.Next(c2.now); got != c2.want {
			t.Fatalf("Next(%d) = %d, want %d", c2.now, got, c2.want)
		}
	}
}
