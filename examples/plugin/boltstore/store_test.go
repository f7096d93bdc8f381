package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/engine/enginetest"
)

func harness() enginetest.Harness {
	return enginetest.Harness{
		Open: func(tb testing.TB, dir string) (engine.SegmentStore, error) {
			return Open(dir, DefaultOptions())
		},
		OpenWith: func(tb testing.TB, dir string, o engine.Options) (engine.SegmentStore, error) {
			opts := DefaultOptions()
			opts.Store = o
			return Open(dir, opts)
		},
		// bbolt keeps nothing unwritten in the process after Commit, so
		// releasing the file lock is all a crash leaves behind.
		Crash: func(s engine.SegmentStore) { s.(*Store).abandon() },
	}
}

func TestConformance(t *testing.T) { enginetest.Run(t, harness()) }

func BenchmarkStore(b *testing.B) { enginetest.Bench(b, harness()) }

// TestCorruptEntryIsDetected flips a payload byte behind the store's back.
func TestCorruptEntryIsDetected(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := engine.SegmentID{Topic: "t", Segment: 1}
	if _, err := s.Append(t.Context(), id, [][]byte{[]byte("hello")}); err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		seg := tx.Bucket(bucketSegments).Bucket(segKey(id))
		v := append([]byte(nil), seg.Get(binary.BigEndian.AppendUint64(nil, 0))...)
		v[len(v)-1] ^= 0xff
		return seg.Put(binary.BigEndian.AppendUint64(nil, 0), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(context.Background(), id, 0, 1, 100); !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("read of a corrupt entry: %v, want ErrCorrupt", err)
	}
}
