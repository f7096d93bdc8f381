package record

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestKeyedRoundTrip(t *testing.T) {
	cases := []Keyed{
		{Timestamp: 1733300000999, Key: []byte("k"), Value: []byte("\xff\x00bin"), Headers: []Header{{Key: []byte("h1"), Value: []byte("v1")}, {Key: []byte{}, Value: nil}}},
		{Timestamp: -1, Key: nil, Value: nil},
		{Timestamp: 5, Key: []byte{}, Value: []byte{}},
		{Timestamp: 6, Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: []byte("h"), Value: []byte{}}},
			Idempotent: true, ProducerID: 1<<40 + 3, Epoch: -2, Sequence: 1<<31 - 1},
	}
	for i, k := range cases {
		b := AppendKeyed(nil, 77, &k)
		if len(b) > KeyedSize(&k) {
			t.Fatalf("case %d: %d bytes, KeyedSize %d", i, len(b), KeyedSize(&k))
		}
		if err := Stamp(b, 1733300001000); err != nil {
			t.Fatal(err)
		}
		at, got, err := DecodeKeyed(b)
		if err != nil || at != 1733300001000 {
			t.Fatalf("case %d: at %d err %v", i, at, err)
		}
		if !reflect.DeepEqual(got, k) {
			t.Fatalf("case %d: got %+v want %+v", i, got, k)
		}
		// Every reader of the text protocol sees the value as the payload.
		ts, p, err := Decode(b, true)
		if err != nil || ts != 1733300001000 || !bytes.Equal(p, k.Value) || (p == nil) != (k.Value == nil) {
			t.Fatalf("case %d: Decode %d %q %v", i, ts, p, err)
		}
		// GET hands out the value bytes unchanged (see docs/kafka.md).
		ps, err := Payloads([][]byte{b}, true)
		if err != nil || !bytes.Equal(ps[0], k.Value) {
			t.Fatalf("case %d: Payloads %q %v", i, ps, err)
		}
	}
}

func TestKeyedReadsVersion1(t *testing.T) {
	at, k, err := DecodeKeyed(AppendTimed(nil, 42, []byte("v")))
	if err != nil || at != 42 || k.Timestamp != 42 || string(k.Value) != "v" || k.Key != nil || k.Headers != nil {
		t.Fatalf("got %d %+v %v", at, k, err)
	}
}

func TestKeyedCorrupt(t *testing.T) {
	good := AppendKeyed(nil, 1, &Keyed{Key: []byte("key"), Value: []byte("value"), Headers: []Header{{Key: []byte("h"), Value: []byte("v")}}})
	for n := range len(good) {
		if _, _, err := DecodeKeyed(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: err %v", n, err)
		}
	}
	if _, _, err := DecodeKeyed(append(bytes.Clone(good), 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: %v", err)
	}
	if err := Stamp([]byte{4, 0, 0, 0, 0, 0, 0, 0, 0}, 1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Stamp of version 4: %v", err)
	}
	idem := AppendKeyed(nil, 1, &Keyed{Value: []byte("v"), Idempotent: true, ProducerID: 9})
	for n := range len(idem) {
		if _, _, err := DecodeKeyed(idem[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("version 3 truncated to %d: err %v", n, err)
		}
	}
}

func FuzzDecodeKeyed(f *testing.F) {
	f.Add(AppendKeyed(nil, 5, &Keyed{Timestamp: 3, Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: []byte("a"), Value: nil}}}))
	f.Add(AppendTimed(nil, 5, []byte("p")))
	f.Add([]byte{2})
	f.Add(AppendKeyed(nil, 5, &Keyed{Value: []byte("v"), Idempotent: true, ProducerID: 7, Sequence: 3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Decode (every text reader) must never panic, and a valid keyed
		// record must re-encode to the same bytes.
		ts, p, derr := Decode(b, true)
		at, k, err := DecodeKeyed(b)
		if err != nil || b[0] != Version2 {
			return
		}
		if derr != nil || ts != at || !bytes.Equal(p, k.Value) {
			t.Fatalf("Decode %d %q %v disagrees with DecodeKeyed %d %+v", ts, p, derr, at, k)
		}
		// Varints may be non-canonical in fuzzed input (never in what
		// AppendKeyed writes): compare the decoded forms.
		at2, k2, err := DecodeKeyed(AppendKeyed(nil, at, &k))
		if err != nil || at2 != at || !reflect.DeepEqual(k2, k) {
			t.Fatalf("re-encoding differs: %d %+v %v vs %+v", at2, k2, err, k)
		}
	})
}
