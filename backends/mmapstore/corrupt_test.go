package mmapstore

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// segFile returns the path of a segment's file in dir.
func segFile(dir string, id engine.SegmentID) string {
	return filepath.Join(dir, topicsDirName, id.Topic, segmentFileName(id.Segment))
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x5a
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkSegment reads the whole segment: it must either be exactly the
// want entries written by appendN, or fail with ErrCorrupt (at Stat or
// Read) and keep failing. Any other outcome is bad data or a wrong error.
func checkSegment(t *testing.T, s *Store, id engine.SegmentID, want uint64) (corrupt bool) {
	t.Helper()
	info, err := s.Stat(t.Context(), id)
	if err == nil {
		if info.Entries != want {
			t.Fatalf("%s has %d entries after damage, want %d or ErrCorrupt", id, info.Entries, want)
		}
		var got [][]byte
		got, err = s.Read(t.Context(), id, 0, int(want)+1, 1<<30)
		if err == nil {
			for i, e := range got {
				if !bytes.Equal(e, entryFor(id, uint64(i))) {
					t.Fatalf("%s entry %d: damaged bytes returned as data", id, i)
				}
			}
			if uint64(len(got)) != want {
				t.Fatalf("%s: read %d entries, want %d", id, len(got), want)
			}
			return false
		}
	}
	if !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("%s: %v, want ErrCorrupt", id, err)
	}
	// Sticky.
	if _, err := s.Read(t.Context(), id, 0, 1, 1); !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("%s: second read %v, want ErrCorrupt again", id, err)
	}
	return true
}

var (
	openID   = engine.SegmentID{Topic: "dmg", Segment: 0}
	sealedID = engine.SegmentID{Topic: "dmg", Segment: 1}
)

// damagedStore writes an open and a sealed segment of 40 entries each.
func damagedStore(t *testing.T, dir string, crash bool) {
	t.Helper()
	s, err := Open(dir, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	for b := range 8 {
		appendN(t, s, openID, uint64(b*5), 5)
		appendN(t, s, sealedID, uint64(b*5), 5)
	}
	if _, err := s.Seal(t.Context(), sealedID); err != nil {
		t.Fatal(err)
	}
	if crash {
		abandon(s)
		return
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptionDetected(t *testing.T) {
	tests := []struct {
		name   string
		id     engine.SegmentID
		damage func(t *testing.T, path string)
	}{
		{"open: payload byte in the middle", openID, func(t *testing.T, p string) { flipByte(t, p, dataStart+600) }},
		{"open: first batch header", openID, func(t *testing.T, p string) { flipByte(t, p, dataStart+2) }},
		{"open: file header", openID, func(t *testing.T, p string) { flipByte(t, p, 3) }},
		{"open: truncated into the data", openID, func(t *testing.T, p string) { os.Truncate(p, dataStart+700) }},
		{"open: truncated into the header", openID, func(t *testing.T, p string) { os.Truncate(p, 100) }},
		{"sealed: payload byte", sealedID, func(t *testing.T, p string) { flipByte(t, p, dataStart+600) }},
		{"sealed: footer", sealedID, func(t *testing.T, p string) {
			st, _ := os.Stat(p)
			flipByte(t, p, st.Size()-3)
		}},
		{"sealed: truncated", sealedID, func(t *testing.T, p string) {
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()-1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			damagedStore(t, dir, false)
			tt.damage(t, segFile(dir, tt.id))
			s := openT(t, dir, testOptions(t))
			if !checkSegment(t, s, tt.id, 40) {
				t.Fatalf("damage went unnoticed")
			}
			if tt.id == openID {
				if _, err := s.Append(t.Context(), tt.id, [][]byte{{1}}); !errors.Is(err, engine.ErrCorrupt) {
					t.Fatalf("append to a corrupt segment: %v", err)
				}
			}
			// The other segment is unaffected, and Delete is the way out.
			other := openID
			if tt.id == openID {
				other = sealedID
			}
			if checkSegment(t, s, other, 40) {
				t.Fatalf("undamaged segment %s reported corrupt", other)
			}
			if err := s.Delete(t.Context(), tt.id); err != nil {
				t.Fatalf("delete corrupt segment: %v", err)
			}
			appendN(t, s, tt.id, 0, 1)
		})
	}
}

// TestTornTailTruncated: after a crash (no checkpoint covering the last
// batch) damage in the last batch is a torn tail: cut back to the last
// whole batch, and appends continue there.
func TestTornTailTruncated(t *testing.T) {
	dir := t.TempDir()
	damagedStore(t, dir, true)
	path := segFile(dir, openID)
	b, _ := os.ReadFile(path)
	// The last batch starts after 7 batches of 5 entries.
	last := uint64(dataStart)
	for range 7 {
		h, err := decodeBatchHeader(b[last:])
		if err != nil {
			t.Fatal(err)
		}
		last += batchHeaderLen + uint64(h.bodyBytes)
	}
	flipByte(t, path, int64(last)+batchHeaderLen+entryHeaderLen+1)
	s := openT(t, dir, testOptions(t))
	if checkSegment(t, s, openID, 35) {
		t.Fatal("torn tail reported as corruption")
	}
	appendN(t, s, openID, 35, 5)
	s.Close()
	s = openT(t, dir, testOptions(t))
	verifyAll(t, s, openID, 40)
}

// TestSealRecordRederived: a damaged seal record in front of a whole
// footer is rewritten; the segment stays sealed.
func TestSealRecordRederived(t *testing.T) {
	dir := t.TempDir()
	damagedStore(t, dir, false)
	flipByte(t, segFile(dir, sealedID), sealRecordOff+10)
	s := openT(t, dir, testOptions(t))
	info, err := s.Stat(t.Context(), sealedID)
	if err != nil || !info.Sealed || info.Entries != 40 {
		t.Fatalf("stat after seal record damage: %+v, %v", info, err)
	}
	verifyAll(t, s, sealedID, 40)
}

// TestRandomDamageNeverReturnsBadData flips one random byte, or truncates
// at a random length, in one of the files of a cleanly closed store, many
// times: every segment must then read back exactly or fail with
// ErrCorrupt.
func TestRandomDamageNeverReturnsBadData(t *testing.T) {
	pristine := t.TempDir()
	damagedStore(t, pristine, false)
	files := map[engine.SegmentID][]byte{}
	for _, id := range []engine.SegmentID{openID, sealedID} {
		b, err := os.ReadFile(segFile(pristine, id))
		if err != nil {
			t.Fatal(err)
		}
		files[id] = b
	}
	rng := rand.New(rand.NewPCG(1, 2))
	corrupt := 0
	const rounds = 150
	for round := range rounds {
		dir := t.TempDir()
		victim := []engine.SegmentID{openID, sealedID}[rng.IntN(2)]
		for id, b := range files {
			b = bytes.Clone(b)
			if id == victim {
				// Most damage goes where the data is, not in the zero tail.
				limit := len(b)
				if id == openID {
					limit = min(limit, 4096)
				}
				if rng.IntN(4) == 0 {
					b = b[:rng.IntN(limit)]
				} else {
					b[rng.IntN(limit)] ^= byte(1 + rng.IntN(255))
				}
			}
			p := segFile(dir, id)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s, err := Open(dir, testOptions(t))
		if err != nil {
			t.Fatalf("round %d: open: %v", round, err)
		}
		for _, id := range []engine.SegmentID{openID, sealedID} {
			if checkSegment(t, s, id, 40) {
				corrupt++
			}
		}
		s.Close()
	}
	t.Logf("%d rounds, %d segments reported corrupt, the rest read back exactly", rounds, corrupt)
}

// TestLostPagesAfterSync simulates power loss: the pages written after the
// last fsync may or may not have reached the disk, in any combination.
// For random subsets of lost (zeroed) pages, recovery must keep everything
// synced, cut back to a prefix of whole batches, and return only exact
// entries.
func TestLostPagesAfterSync(t *testing.T) {
	src := t.TempDir()
	s, err := Open(src, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	id := engine.SegmentID{Topic: "pl", Segment: 0}
	var n uint64
	for range 30 {
		appendN(t, s, id, n, 7)
		n += 7
	}
	if err := s.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	synced := n
	syncedEnd := s.segs[id].synced.end
	for range 60 {
		appendN(t, s, id, n, 7)
		n += 7
	}
	abandon(s)
	pristine, err := os.ReadFile(segFile(src, id))
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	firstPage := int(syncedEnd+page-1) / page // pages wholly after the synced end
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 40 {
		b := bytes.Clone(pristine)
		for p := firstPage; p*page < len(b); p++ {
			if rng.IntN(3) == 0 {
				clear(b[p*page : min(len(b), (p+1)*page)])
			}
		}
		dir := t.TempDir()
		p := segFile(dir, id)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, testOptions(t))
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Stat(t.Context(), id)
		if err != nil || info.Entries < synced || info.Entries > n || info.Entries%7 != 0 {
			t.Fatalf("trial %d: %+v, %v; want a whole-batch prefix of %d..%d entries", trial, info, err, synced, n)
		}
		verifyAll(t, s, id, info.Entries)
		s.Close()
	}
}
