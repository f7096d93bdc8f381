package mmapstore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
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
