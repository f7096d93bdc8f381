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
	check := func(s *Store, want int) {
		t.Helper()
		for i := range n {
			id := engine.SegmentID{Topic: fmt.Sprintf("t%d", i), Segment: 1}
			got, err := s.Read(t.Context(), id, 0, 10, 1<<20)
			if err != nil || len(got) != want || string(got[0]) != fmt.Sprint(i) {
				t.Fatalf("%s after recovery: %q, %v", id, got, err)
			}
		}
	}
	check(s, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// After a clean close every file is exactly at its checkpoint with
	// zeros after it: recovery repairs nothing, so it syncs nothing.
	calls.Store(0)
	counting := func(f *os.File) error {
		calls.Add(1)
		return fdatasync(f)
	}
	s = reopenWithoutRepair(t, dir, o, counting, &calls)
	check(s, 2)
	for i := range n {
		id := engine.SegmentID{Topic: fmt.Sprintf("t%d", i), Segment: 1}
		if first, err := s.Append(t.Context(), id, [][]byte{[]byte("y")}); err != nil || first != 2 {
			t.Fatalf("append to %s after a clean reopen: first %d, %v", id, first, err)
		}
	}
	check(s, 3)
}

// TestRecoveryZeroesStaleTailAtCheckpoint: a file at its checkpoint but
// with stale bytes far after its data (pages of a torn append written out
// of order) is not taken as clean: recovery zeroes the tail.
func TestRecoveryZeroesStaleTailAtCheckpoint(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t)
	// Past the 64 KiB the scan looks at for a torn tail.
	o.SegmentFileBytes, o.InitialFileBytes = 1<<20, 1<<20
	s := openT(t, dir, o)
	id := engine.SegmentID{Topic: "t", Segment: 1}
	if _, err := s.Append(t.Context(), id, [][]byte{[]byte("a")}); err != nil {
		t.Fatal(err)
	}
	path := s.segs[id].path
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	at := fi.Size() - 100
	if _, err := f.WriteAt([]byte("stale"), at); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s = openT(t, dir, o)
	b := make([]byte, 5)
	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	if string(b) != "\x00\x00\x00\x00\x00" {
		t.Fatalf("stale tail kept after recovery: %q", b)
	}
	if got, err := s.Read(t.Context(), id, 0, 10, 1<<20); err != nil || len(got) != 1 {
		t.Fatalf("read after recovery: %q, %v", got, err)
	}
}

// TestCloseSyncsOnceForAll: a clean close makes every open segment durable
// with one syncfs (no fsync per segment, parked or mapped), and when the
// syncfs fails it fsyncs each one instead; either way the next open finds
// every segment at its checkpoint and repairs nothing.
func TestCloseSyncsOnceForAll(t *testing.T) {
	for _, fsFails := range []bool{false, true} {
		t.Run(fmt.Sprintf("syncfs_fails=%v", fsFails), func(t *testing.T) {
			dir := t.TempDir()
			o := testOptions(t) // two open segments mapped, the rest parked
			var calls atomic.Int64
			counting := func(f *os.File) error {
				calls.Add(1)
				return fdatasync(f)
			}
			s, err := open(dir, o, counting)
			if err != nil {
				t.Fatal(err)
			}
			if fsFails {
				s.env.syncFS = func(string) error { return errors.New("injected syncfs failure") }
			}
			const n = 20
			id := func(i int) engine.SegmentID { return engine.SegmentID{Topic: fmt.Sprintf("t%d", i), Segment: 1} }
			for i := range n {
				if _, err := s.Append(t.Context(), id(i), [][]byte{[]byte(fmt.Sprint(i))}); err != nil {
					t.Fatal(err)
				}
			}
			calls.Store(0)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if c := calls.Load(); fsFails && c < 2*n || !fsFails && c != 0 {
				t.Fatalf("close of %d open segments made %d fsyncs (syncfs fails: %v)", n, c, fsFails)
			}
			s = reopenWithoutRepair(t, dir, o, counting, &calls)
			for i := range n {
				if got, err := s.Read(t.Context(), id(i), 0, 10, 1<<20); err != nil || len(got) != 1 || string(got[0]) != fmt.Sprint(i) {
					t.Fatalf("%s: %q, %v", id(i), got, err)
				}
			}
		})
	}
}

// reopenWithoutRepair opens dir with syncFile (which counts into calls)
// and fails unless recovery made no fsync: after a clean close every file
// is exactly at its checkpoint with zeros after it, so nothing is repaired.
func reopenWithoutRepair(t *testing.T, dir string, o Options, syncFile func(*os.File) error, calls *atomic.Int64) *Store {
	t.Helper()
	calls.Store(0)
	s, err := open(dir, o, syncFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if c := calls.Load(); c != 0 {
		t.Fatalf("open after a clean close made %d fsyncs (repairs), want 0", c)
	}
	return s
}
