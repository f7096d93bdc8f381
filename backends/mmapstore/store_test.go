package mmapstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

func openT(t *testing.T, dir string, o Options) *Store {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// entryFor is deterministic content for (segment id, offset), so any entry
// read back can be checked without remembering what was written.
func entryFor(id engine.SegmentID, off uint64) []byte {
	n := int((off*7919 + id.Segment*31 + uint64(len(id.Topic))) % 300)
	b := make([]byte, n)
	x := off*0x9E3779B97F4A7C15 + id.Segment + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

func appendN(t testing.TB, s *Store, id engine.SegmentID, first uint64, n int) {
	t.Helper()
	batch := make([][]byte, n)
	for i := range batch {
		batch[i] = entryFor(id, first+uint64(i))
	}
	got, err := s.Append(t.Context(), id, batch)
	if err != nil || got != first {
		t.Fatalf("append %s at %d: got %d, %v", id, first, got, err)
	}
}

// verifyAll reads the whole segment and checks every entry's content.
func verifyAll(t testing.TB, s *Store, id engine.SegmentID, want uint64) {
	t.Helper()
	var off uint64
	for off < want {
		got, err := s.Read(t.Context(), id, off, 1000, 1<<20)
		if err != nil {
			t.Fatalf("read %s at %d: %v", id, off, err)
		}
		if len(got) == 0 {
			t.Fatalf("read %s at %d: no entries, want %d", id, off, want)
		}
		for i, e := range got {
			if !bytes.Equal(e, entryFor(id, off+uint64(i))) {
				t.Fatalf("%s entry %d differs from what was written", id, off+uint64(i))
			}
		}
		off += uint64(len(got))
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Options)
		field  string
	}{
		{"defaults", func(*Options) {}, ""},
		{"file too small", func(o *Options) { o.SegmentFileBytes = 100 }, "SegmentFileBytes"},
		{"file too big", func(o *Options) { o.SegmentFileBytes = 1 << 50 }, "SegmentFileBytes"},
		{"no mappings", func(o *Options) { o.MaxMappedSegments = 0 }, "MaxMappedSegments"},
		{"bad durability", func(o *Options) { o.Store.Durability = "sometimes" }, "Store"},
		{"batch too big", func(o *Options) { o.Store.Limits.MaxBatchBytes = 2 << 30 }, "Store.Limits.MaxBatchBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			tt.change(&o)
			err := o.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, engine.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate() = %v, want ErrInvalidArgument naming %s", err, tt.field)
			}
			if _, err := Open(t.TempDir(), o); !errors.Is(err, engine.ErrInvalidArgument) {
				t.Fatalf("Open with bad options = %v", err)
			}
		})
	}
}

func TestFileLayoutAndNames(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data_plane")
	s := openT(t, dir, testOptions(t))
	id := engine.SegmentID{Topic: "logs.v1", Segment: 7}
	appendN(t, s, id, 0, 3)
	want := filepath.Join(dir, "topics", "logs.v1", "00000000000000000007.seg")
	if _, err := os.Stat(want); err != nil {
		t.Fatalf("segment file not where documented: %v", err)
	}
	for _, bad := range []string{"", "..", ".", "../x", "/", "a/b", "a\x00b", "/etc/passwd", `..\x`, strings.Repeat("x", 256)} {
		_, err := s.Append(t.Context(), engine.SegmentID{Topic: bad}, [][]byte{[]byte("x")})
		if !errors.Is(err, engine.ErrInvalidName) {
			t.Errorf("append to %q: %v, want ErrInvalidName", bad, err)
		}
		if _, err := s.Read(t.Context(), engine.SegmentID{Topic: bad}, 0, 1, 1); !errors.Is(err, engine.ErrInvalidName) {
			t.Errorf("read of %q: %v, want ErrInvalidName", bad, err)
		}
	}
	// Nothing was created outside dir, and inside only the one topic.
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Fatalf("files outside the store dir: %v", entries)
	}
	topics, _ := os.ReadDir(filepath.Join(dir, "topics"))
	if len(topics) != 1 || topics[0].Name() != "logs.v1" {
		t.Fatalf("topic dirs: %v", topics)
	}
}

func TestDirectoryLocked(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testOptions(t))
	if _, err := Open(dir, testOptions(t)); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("second open: %v, want ErrUnavailable", err)
	}
	s.Close()
	s2 := openT(t, dir, testOptions(t))
	s2.Close()
}

// TestGrowWithReaders appends far past the preallocated file size while
// readers scan the segment, so remaps happen under readers (run with -race).
func TestGrowWithReaders(t *testing.T) {
	o := testOptions(t)
	o.SegmentFileBytes = 4096
	s := openT(t, t.TempDir(), o)
	id := engine.SegmentID{Topic: "grow", Segment: 0}
	const batches = 200
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 4)
	appendN(t, s, id, 0, 5)
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := s.Read(t.Context(), id, 0, 1<<20, 1<<30)
				if err != nil {
					errs <- err
					return
				}
				for i, e := range got {
					if !bytes.Equal(e, entryFor(id, uint64(i))) {
						errs <- fmt.Errorf("entry %d differs", i)
						return
					}
				}
			}
		})
	}
	for b := 1; b < batches; b++ {
		appendN(t, s, id, uint64(b*5), 5)
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	verifyAll(t, s, id, batches*5)
	st, _ := os.Stat(s.segs[id].path)
	if st.Size() <= 4096 {
		t.Fatalf("file did not grow: %d bytes", st.Size())
	}
}

func TestSealTrimsAndPersists(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testOptions(t))
	id := engine.SegmentID{Topic: "seal", Segment: 1}
	appendN(t, s, id, 0, 10)
	info, err := s.Seal(t.Context(), id)
	if err != nil || !info.Sealed || info.Entries != 10 {
		t.Fatalf("seal: %+v, %v", info, err)
	}
	path := s.segs[id].path
	st, _ := os.Stat(path)
	rec := s.segs[id].seal
	if uint64(st.Size()) != rec.footerPos+rec.footerLen() {
		t.Fatalf("sealed file is %d bytes, want trimmed to %d", st.Size(), rec.footerPos+rec.footerLen())
	}
	if _, err := s.Append(t.Context(), id, [][]byte{{1}}); !errors.Is(err, engine.ErrSealed) {
		t.Fatalf("append after seal: %v", err)
	}
	verifyAll(t, s, id, 10)
	s.Close()
	s = openT(t, dir, testOptions(t))
	if info2, err := s.Stat(t.Context(), id); err != nil || info2 != info {
		t.Fatalf("after reopen: %+v, %v; want %+v", info2, err, info)
	}
	verifyAll(t, s, id, 10)
	if _, err := s.Append(t.Context(), id, [][]byte{{1}}); !errors.Is(err, engine.ErrSealed) {
		t.Fatalf("append after reopen: %v", err)
	}
}

// countMapped counts this process's mappings and descriptors of files
// under dir.
func countMapped(t *testing.T, dir string) (maps, fds int) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps")
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, dir) {
			maps++
		}
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(target, dir) {
			fds++
		}
	}
	return maps, fds
}

// TestManySealedSegmentsBounded: 2000 sealed segments, at most 8 mapped,
// none holding a descriptor, before and after a reopen.
func TestManySealedSegmentsBounded(t *testing.T) {
	const segs, bound = 2000, 8
	dir := t.TempDir()
	o := testOptions(t)
	o.SegmentFileBytes = 4096
	o.MaxMappedSegments = bound
	s := openT(t, dir, o)
	for i := range segs {
		id := engine.SegmentID{Topic: fmt.Sprintf("t%d", i%10), Segment: uint64(i)}
		appendN(t, s, id, 0, 3)
		if _, err := s.Seal(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	readAll := func() {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < segs; i += 4 {
					verifyAll(t, s, engine.SegmentID{Topic: fmt.Sprintf("t%d", i%10), Segment: uint64(i)}, 3)
				}
			})
		}
		wg.Wait()
		maps, fds := countMapped(t, dir)
		// The LOCK file is the one descriptor under dir.
		if maps > bound || fds > 1 || s.env.mapped.len() > bound {
			t.Fatalf("after reading %d sealed segments: %d mappings, %d descriptors under dir, %d in the LRU; bound %d", segs, maps, fds, s.env.mapped.len(), bound)
		}
	}
	readAll()
	s.Close()
	s = openT(t, dir, o)
	if maps, _ := countMapped(t, dir); maps != 0 {
		t.Fatalf("%d sealed segments mapped right after open, want 0 (mapped on demand)", maps)
	}
	readAll()
	list, err := s.List(t.Context(), "")
	if err != nil || len(list) != segs {
		t.Fatalf("list: %d, %v", len(list), err)
	}
}

func TestDeleteRemovesFiles(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testOptions(t))
	a := engine.SegmentID{Topic: "del", Segment: 0}
	b := engine.SegmentID{Topic: "del", Segment: 1}
	appendN(t, s, a, 0, 4)
	appendN(t, s, b, 0, 4)
	if _, err := s.Seal(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	verifyAll(t, s, b, 4) // mapped now
	for _, id := range []engine.SegmentID{a, b} {
		if err := s.Delete(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Read(t.Context(), id, 0, 1, 1); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("read after delete: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "topics", "del")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty topic directory left behind: %v", err)
	}
	if maps, _ := countMapped(t, dir); maps != 0 {
		t.Fatalf("%d mappings left after delete", maps)
	}
	appendN(t, s, a, 0, 2) // Append recreates
}
