package mmapstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// TestWriteBatchAtMatchesPutBatch checks that the pwrite path writes the
// same bytes as the mapping path, including entries that straddle (or are
// larger than) the staging buffer.
func TestWriteBatchAtMatchesPutBatch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int
		buf   int
	}{
		{name: "one buffer", sizes: []int{100, 0, 4096, 7}, buf: pwriteBufBytes},
		{name: "headers straddle", sizes: []int{5, 5, 5, 5, 5, 5}, buf: 32},
		{name: "payload larger than buffer", sizes: []int{1000, 3, 250}, buf: 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries := make([][]byte, len(tc.sizes))
			for i, n := range tc.sizes {
				entries[i] = make([]byte, n)
				for j := range entries[i] {
					entries[i][j] = byte(i*31 + j)
				}
			}
			want := make([]byte, batchLen(entries))
			putBatch(want, 42, entries)
			f, err := os.Create(filepath.Join(t.TempDir(), "seg"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			const off = 100
			if err := writeBatchAt(f, off, 42, entries, len(want)-batchHeaderLen, make([]byte, tc.buf)); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[off:], want) {
				t.Fatalf("file holds %x, want %x", got[off:], want)
			}
		})
	}
}

// TestMixedWritePathsReopen interleaves batches below and above
// pwriteMinBytes (so both write paths and file growth are used), checks
// that readers of the mapping see every batch at once, then abandons the
// store as a killed process would and checks that a reopen finds every
// acknowledged entry, in every durability mode.
func TestMixedWritePathsReopen(t *testing.T) {
	for _, mode := range []engine.Durability{engine.DurabilityNone, engine.DurabilityInterval, engine.DurabilityAlways} {
		t.Run(string(mode), func(t *testing.T) {
			dir := t.TempDir()
			o := testOptions(t)
			o.Store.Durability = mode
			s, err := Open(dir, o)
			if err != nil {
				t.Fatal(err)
			}
			id := engine.SegmentID{Topic: "mixed", Segment: 0}
			var n uint64
			var pwrites int
			for i := range 60 {
				count := 1 + i%3 // entries of 0..299 bytes: always below a page
				if i%2 == 1 {
					count = 40 + i // about 6 KiB or more: the pwrite path
				}
				batch := make([][]byte, count)
				for j := range batch {
					batch[j] = entryFor(id, n+uint64(j))
				}
				if batchLen(batch) >= pwriteMinBytes {
					pwrites++
				}
				appendN(t, s, id, n, count)
				n += uint64(count)
				verifyAll(t, s, id, n)
			}
			if pwrites == 0 {
				t.Fatal("no batch took the pwrite path")
			}
			abandon(s)
			s = openT(t, dir, o)
			info, err := s.Stat(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			// Abandoning loses nothing the kernel already has, in any
			// mode: only a power loss could.
			if info.Entries != n {
				t.Fatalf("after reopen: %d entries, want %d", info.Entries, n)
			}
			verifyAll(t, s, id, n)
		})
	}
}

// TestFsyncFailureLargeBatch is TestFsyncFailure for a batch written with
// pwrite: in always mode the failed, never-acknowledged batch is zeroed
// through the mapping (the same page cache), so a reopen does not bring it
// back.
func TestFsyncFailureLargeBatch(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t)
	o.Store.Durability = engine.DurabilityAlways
	id := engine.SegmentID{Topic: "fs", Segment: 0}
	var failing atomic.Bool
	s, err := open(dir, o, func(f *os.File) error {
		if failing.Load() {
			return syscall.EIO
		}
		return fdatasync(f)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendN(t, s, id, 0, 3)
	batch := make([][]byte, 60)
	for i := range batch {
		batch[i] = entryFor(id, 3+uint64(i))
	}
	if batchLen(batch) < pwriteMinBytes {
		t.Fatalf("batch of %d bytes would not take the pwrite path", batchLen(batch))
	}
	failing.Store(true)
	if _, err := s.Append(t.Context(), id, batch); !errors.Is(err, engine.ErrUnavailable) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with a failing fsync: %v, want ErrUnavailable wrapping EIO", err)
	}
	failing.Store(false)
	if err := s.Close(); err != nil {
		t.Logf("close reports: %v", err)
	}
	s2 := openT(t, dir, o)
	if info, err := s2.Stat(t.Context(), id); err != nil || info.Entries != 3 {
		t.Fatalf("after reopen: %+v, %v; want the 3 acknowledged entries only", info, err)
	}
	verifyAll(t, s2, id, 3)
}
