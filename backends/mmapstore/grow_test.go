package mmapstore

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// TestFilesStartSmallAndGrow: a new segment file costs InitialFileBytes,
// doubles up to SegmentFileBytes, then grows by SegmentFileBytes; a
// reopened open segment keeps its size, and every entry reads back.
func TestFilesStartSmallAndGrow(t *testing.T) {
	dir := t.TempDir()
	o := DefaultOptions()
	o.SegmentFileBytes = 256 << 10
	o.InitialFileBytes = 16 << 10
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := engine.SegmentID{Topic: "t", Segment: 1}
	size := func() int64 {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(dir, "topics", "t", "*.seg"))
		if len(files) != 1 {
			t.Fatalf("segment files %v", files)
		}
		fi, err := os.Stat(files[0])
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	entry := bytes.Repeat([]byte("x"), 1000)
	put := func(n int) {
		t.Helper()
		for range n {
			if _, err := s.Append(ctx, id, [][]byte{entry}); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(1)
	if got := size(); got != 16<<10 {
		t.Fatalf("a new file is %d bytes, want %d", got, 16<<10)
	}
	put(40) // ~41 KB: 16 -> 32 -> 64 KiB
	if got := size(); got != 64<<10 {
		t.Fatalf("after 41 KB: %d bytes, want 64 KiB (doubling)", got)
	}
	put(300) // ~341 KB: 128, 256 KiB, then steps of 256 KiB
	if got := size(); got != 512<<10 {
		t.Fatalf("after 341 KB: %d bytes, want 512 KiB (then steps of SegmentFileBytes)", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Read(ctx, id, 0, 1000, 1<<30)
	if err != nil || len(got) != 341 || !bytes.Equal(got[340], entry) {
		t.Fatalf("read back %d entries, %v", len(got), err)
	}
}

// A zero-length preallocation is a no-op, not fallocate's EINVAL:
// recovery asks for one when a crashed segment's valid data ends exactly
// at the end of its file (a 3-node kill-all test found a node that could
// not start: "re-extend ...: invalid argument").
func TestPreallocateNothing(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := preallocate(f, 0, 4096); err != nil {
		t.Fatal(err)
	}
	if err := preallocate(f, 4096, 0); err != nil {
		t.Fatalf("zero-length preallocation: %v", err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != 4096 {
		t.Fatalf("size %d %v", fi.Size(), err)
	}
}
