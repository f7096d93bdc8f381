package badgerstore

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// TestCorruptionDetected flips one byte inside a stored payload, in the
// value log (large entries) and in an SST (small entries), and checks the
// store never returns the damaged bytes: the affected read fails with
// ErrCorrupt, and the other entries still read back intact.
func TestCorruptionDetected(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int    // entry size: >= the 1 KiB test ValueThreshold goes to the value log
		ext  string // file kind that holds the payload after a clean close
	}{
		{"ValueLog", 4 << 10, ".vlog"},
		{"Table", 200, ".sst"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir, engine.DurabilityNone)
			id := engine.SegmentID{Topic: "rot", Segment: 0}
			rng := rand.New(rand.NewPCG(5, 6))
			entries := make([][]byte, 20)
			for i := range entries {
				entries[i] = make([]byte, tc.size)
				for j := range entries[i] {
					entries[i][j] = byte(rng.Uint32())
				}
			}
			if _, err := s.Append(t.Context(), id, entries); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil { // flushes the memtable into an SST
				t.Fatal(err)
			}
			const victim = 10
			flipIn(t, dir, tc.ext, entries[victim][tc.size/2-8:tc.size/2+8])

			s = openTest(t, dir, engine.DurabilityNone)
			_, err := s.Read(t.Context(), id, victim, 1, 1<<20)
			if !errors.Is(err, engine.ErrCorrupt) {
				t.Fatalf("point read of the damaged entry = %v, want ErrCorrupt", err)
			}
			t.Logf("point read: %v", err)
			// A scan over it must not return the damaged entry either; it
			// may stop early with ErrCorrupt (a whole SST block fails its
			// checksum), but whatever it returns is intact.
			got, err := s.Read(t.Context(), id, 0, len(entries), 1<<20)
			if err != nil && !errors.Is(err, engine.ErrCorrupt) {
				t.Fatalf("scan = %v, want nil or ErrCorrupt", err)
			}
			for i, e := range got {
				if !bytes.Equal(e, entries[i]) {
					t.Fatalf("scan returned damaged bytes for entry %d", i)
				}
			}
			if err == nil && len(got) > victim {
				t.Fatalf("scan returned %d entries including the damaged one without an error", len(got))
			}
		})
	}
}

// flipIn finds needle in the one file of dir with extension ext that holds
// it and flips a bit in its middle.
func flipIn(t *testing.T, dir, ext string, needle []byte) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ext) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, needle)
		if i < 0 {
			continue
		}
		b[i+len(needle)/2] ^= 0x10
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("payload not found in any %s file of %s", ext, dir)
}
