package mmapstore

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// TestRecoveryOfManySegmentsInParallel: after a crash, Open recovers every
// one of many segment files (they are recovered concurrently), and an I/O
// failure on one of them fails Open cleanly, leaving every file to a later
// Open that succeeds.
func TestRecoveryOfManySegmentsInParallel(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t)
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		id := engine.SegmentID{Topic: fmt.Sprintf("t%d", i), Segment: 1}
		if _, err := s.Append(t.Context(), id, [][]byte{[]byte(fmt.Sprint(i)), []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	abandon(s)

	var calls atomic.Int64
	failing := func(f *os.File) error {
		if calls.Add(1) == n/2 {
			return errors.New("injected fsync failure")
		}
		return fdatasync(f)
	}
	if _, err := open(dir, o, failing); err == nil {
		t.Fatal("open succeeded although an fsync of the recovery failed")
	}

	s = openT(t, dir, o)
	for i := range n {
		id := engine.SegmentID{Topic: fmt.Sprintf("t%d", i), Segment: 1}
		got, err := s.Read(t.Context(), id, 0, 10, 1<<20)
		if err != nil || len(got) != 2 || string(got[0]) != fmt.Sprint(i) {
			t.Fatalf("%s after recovery: %q, %v", id, got, err)
		}
	}
}
