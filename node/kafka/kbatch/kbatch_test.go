package kbatch

import (
	"bytes"
	"testing"

	"github.com/walrus-go/walrus/node/record"
)

func sample(n int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Off: uint64(100 + i), K: record.Keyed{Timestamp: int64(1000 + i), Key: []byte("key"), Value: bytes.Repeat([]byte{'v'}, 100),
			Headers: []record.Header{{Key: []byte("h"), Value: nil}}}}
	}
	return es
}

func TestEncodeDecode(t *testing.T) {
	es := sample(50)
	b := Encode(nil, es)
	got, err := Decode(b, 1<<20)
	if err != nil || len(got) != len(es) {
		t.Fatalf("%d records, %v", len(got), err)
	}
	for i := range got {
		w := es[i].K
		if got[i].Timestamp != w.Timestamp || !bytes.Equal(got[i].Key, w.Key) || !bytes.Equal(got[i].Value, w.Value) || len(got[i].Headers) != 1 || got[i].Headers[0].Value != nil {
			t.Fatalf("record %d: %+v", i, got[i])
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	es := sample(8192)
	b.ReportAllocs()
	for b.Loop() {
		Encode(nil, es)
	}
}

func BenchmarkDecode(b *testing.B) {
	buf := Encode(nil, sample(8192))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(buf, 1<<30); err != nil {
			b.Fatal(err)
		}
	}
}
