package enginetest

import (
	"bytes"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// tenByTen is a segment of ten 10-byte entries.
func tenByTen(t *testing.T, s engine.SegmentStore, id engine.SegmentID) [][]byte {
	t.Helper()
	entries := make([][]byte, 10)
	for i := range entries {
		entries[i] = bytes.Repeat([]byte{byte('a' + i)}, 10)
	}
	mustAppend(t, s, id, entries)
	return entries
}

func testReadMaxEntries(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "bounds", Segment: 0}
	all := tenByTen(t, s, id)
	for _, tc := range []struct{ off, max, want int }{{0, 1, 1}, {0, 3, 3}, {2, 5, 5}, {7, 5, 3}, {0, 1000, 10}, {9, 1, 1}} {
		got, err := s.Read(t.Context(), id, uint64(tc.off), tc.max, 1<<20)
		if err != nil {
			t.Fatalf("read at %d max %d: %v", tc.off, tc.max, err)
		}
		equalEntries(t, "bounded by entry count", got, all[tc.off:tc.off+tc.want])
	}
}

func testReadMaxBytes(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "bounds", Segment: 0}
	all := tenByTen(t, s, id)
	for _, tc := range []struct{ off, maxBytes, want int }{{0, 10, 1}, {0, 19, 1}, {0, 20, 2}, {0, 25, 2}, {3, 30, 3}, {8, 1000, 2}} {
		got, err := s.Read(t.Context(), id, uint64(tc.off), 100, tc.maxBytes)
		if err != nil {
			t.Fatalf("read at %d maxBytes %d: %v", tc.off, tc.maxBytes, err)
		}
		equalEntries(t, "bounded by bytes", got, all[tc.off:tc.off+tc.want])
	}
	// Empty entries cost nothing against the budget: only an entry that
	// would push the total over maxBytes stops the read.
	mixed := engine.SegmentID{Topic: "bounds", Segment: 1}
	ten := bytes.Repeat([]byte("z"), 10)
	mustAppend(t, s, mixed, [][]byte{ten, {}, {}, ten, {}})
	got, err := s.Read(t.Context(), mixed, 0, 100, 10)
	if err != nil {
		t.Fatal(err)
	}
	equalEntries(t, "empty entries within the byte budget", got, [][]byte{ten, {}, {}})
}

func testReadAtLeastOne(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "bounds", Segment: 0}
	big := bytes.Repeat([]byte("B"), 5000)
	mustAppend(t, s, id, [][]byte{big, []byte("small")})
	got, err := s.Read(t.Context(), id, 0, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	equalEntries(t, "entry larger than maxBytes", got, [][]byte{big})
	got, err = s.Read(t.Context(), id, 1, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	equalEntries(t, "second entry with maxBytes 1", got, [][]byte{[]byte("small")})
}

func testReadAtCount(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "bounds", Segment: 0}
	tenByTen(t, s, id)
	got, err := s.Read(t.Context(), id, 10, 10, 100)
	if err != nil || len(got) != 0 {
		t.Fatalf("read at offset == count: got %d entries, err %v; want none and nil", len(got), err)
	}
	if _, err := s.Seal(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	got, err = s.Read(t.Context(), id, 10, 10, 100)
	if err != nil || len(got) != 0 {
		t.Fatalf("read at offset == count of a sealed segment: got %d entries, err %v; want none and nil", len(got), err)
	}
}

func testReadPastEnd(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "bounds", Segment: 0}
	tenByTen(t, s, id)
	for _, off := range []uint64{11, 12, 1 << 40, ^uint64(0)} {
		_, err := s.Read(t.Context(), id, off, 10, 100)
		wantErr(t, "read past the end", err, engine.ErrOutOfRange)
	}
}

func testReadEmptySegment(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	// A segment holding only empty entries has Bytes 0 and still returns
	// its entries, bounded by count only.
	id := engine.SegmentID{Topic: "bounds", Segment: 0}
	empties := make([][]byte, 5)
	for i := range empties {
		empties[i] = []byte{}
	}
	mustAppend(t, s, id, empties)
	got, err := s.Read(t.Context(), id, 0, 3, 1)
	if err != nil || len(got) != 3 {
		t.Fatalf("read of empty entries: got %d entries, err %v; want 3", len(got), err)
	}
	if info := mustStat(t, s, id); info.Entries != 5 || info.Bytes != 0 {
		t.Fatalf("stat = %+v, want 5 entries, 0 bytes", info)
	}
	// A segment no append ever created has no entries to read: not found.
	_, err = s.Read(t.Context(), engine.SegmentID{Topic: "bounds", Segment: 1}, 0, 1, 1)
	wantErr(t, "read of a segment never appended to", err, engine.ErrNotFound)
}

func testReadNotFound(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	mustAppend(t, s, engine.SegmentID{Topic: "present", Segment: 1}, [][]byte{[]byte("x")})
	for _, id := range []engine.SegmentID{{Topic: "absent", Segment: 0}, {Topic: "present", Segment: 0}, {Topic: "present", Segment: 2}, {Topic: "presen", Segment: 1}} {
		_, err := s.Read(t.Context(), id, 0, 1, 1)
		wantErr(t, "read of "+id.String(), err, engine.ErrNotFound)
		_, err = s.Stat(t.Context(), id)
		wantErr(t, "stat of "+id.String(), err, engine.ErrNotFound)
	}
}

func testReadInvalidBounds(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "bounds", Segment: 0}
	tenByTen(t, s, id)
	for _, b := range [][2]int{{0, 10}, {10, 0}, {-1, 10}, {10, -1}} {
		_, err := s.Read(t.Context(), id, 0, b[0], b[1])
		wantErr(t, "read with bad bounds", err, engine.ErrInvalidArgument)
	}
}
