package enginetest

import (
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// history is what a reopen case wrote, to compare after reopening.
type history struct {
	data   map[engine.SegmentID][][]byte
	sealed map[engine.SegmentID]bool
}

// writeHistory fills a store with several topics and segments, one sealed,
// one with empty entries, and batches of varying size.
func writeHistory(t *testing.T, s engine.SegmentStore) history {
	t.Helper()
	hist := history{data: map[engine.SegmentID][][]byte{}, sealed: map[engine.SegmentID]bool{}}
	ids := []engine.SegmentID{{Topic: "r", Segment: 0}, {Topic: "r", Segment: 1}, {Topic: "r2", Segment: 0}, {Topic: "q", Segment: 7}}
	for i, id := range ids {
		off := uint64(0)
		for b := range 3 + i {
			n := 1 + (b+i)%4
			batch := patternEntries(off+uint64(i*1000), n)
			mustAppend(t, s, id, batch)
			hist.data[id] = append(hist.data[id], batch...)
			off += uint64(n)
		}
	}
	empties := engine.SegmentID{Topic: "q", Segment: 8}
	mustAppend(t, s, empties, [][]byte{{}, {}})
	hist.data[empties] = [][]byte{{}, {}}
	if _, err := s.Seal(t.Context(), ids[0]); err != nil {
		t.Fatal(err)
	}
	hist.sealed[ids[0]] = true
	return hist
}

// verify checks the store holds exactly hist, then that open segments
// continue at the right offset and sealed ones stay sealed (and records the
// continuation appends in hist).
func (hist history) verify(t *testing.T, s engine.SegmentStore, what string) {
	t.Helper()
	list, err := s.List(t.Context(), "")
	if err != nil {
		t.Fatalf("%s: list: %v", what, err)
	}
	if len(list) != len(hist.data) {
		t.Fatalf("%s: list has %d segments, want %d: %+v", what, len(list), len(hist.data), list)
	}
	for id, entries := range hist.data {
		info := mustStat(t, s, id)
		want := engine.SegmentInfo{ID: id, Entries: uint64(len(entries)), Bytes: sumBytes(entries), Sealed: hist.sealed[id]}
		if info != want {
			t.Fatalf("%s: stat %s = %+v, want %+v", what, id, info, want)
		}
		equalEntries(t, what+": "+id.String(), readAll(t, s, id), entries)
	}
	for id, entries := range hist.data {
		if hist.sealed[id] {
			_, err := s.Append(t.Context(), id, [][]byte{[]byte("late")})
			wantErr(t, what+": append to sealed "+id.String(), err, engine.ErrSealed)
			continue
		}
		more := [][]byte{[]byte("continued"), {}}
		if first := mustAppend(t, s, id, more); first != uint64(len(entries)) {
			t.Fatalf("%s: append to %s got offset %d, want %d", what, id, first, len(entries))
		}
		hist.data[id] = append(entries, more...)
	}
}

func testReopenClean(t *testing.T, h Harness) {
	requireReopen(t, h)
	dir := t.TempDir()
	s := h.open(t, dir)
	hist := writeHistory(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s = h.open(t, dir)
	hist.verify(t, s, "first reopen")
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	// A second reopen sees the appends made after the first one.
	s = h.open(t, dir)
	hist.verify(t, s, "second reopen")
}

func testReopenAfterDelete(t *testing.T, h Harness) {
	requireReopen(t, h)
	dir := t.TempDir()
	s := h.open(t, dir)
	hist := writeHistory(t, s)
	for _, id := range []engine.SegmentID{{Topic: "r", Segment: 0}, {Topic: "r2", Segment: 0}} {
		if err := s.Delete(t.Context(), id); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
		delete(hist.data, id)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s = h.open(t, dir)
	hist.verify(t, s, "reopen after delete")
	_, err := s.Stat(t.Context(), engine.SegmentID{Topic: "r2", Segment: 0})
	wantErr(t, "stat of deleted segment after reopen", err, engine.ErrNotFound)
	// A deleted segment id can be written again from offset 0.
	if first := mustAppend(t, s, engine.SegmentID{Topic: "r2", Segment: 0}, [][]byte{[]byte("again")}); first != 0 {
		t.Fatalf("append to re-created segment got offset %d, want 0", first)
	}
}

func testReopenCrash(t *testing.T, h Harness) {
	requireReopen(t, h)
	if h.Crash == nil {
		t.Skip("no Harness.Crash hook")
	}
	dir := t.TempDir()
	// live is the store not yet crashed, closed at cleanup if the test
	// fails before crashing it.
	var live engine.SegmentStore
	t.Cleanup(func() {
		if live != nil {
			_ = live.Close()
		}
	})
	open := func() engine.SegmentStore {
		s, err := h.Open(t, dir)
		if err != nil {
			t.Fatalf("open %s: %v", dir, err)
		}
		live = s
		return s
	}
	crash := func(s engine.SegmentStore) {
		live = nil
		h.Crash(s)
	}
	s := open()
	hist := writeHistory(t, s)
	// Nothing is synced: a process crash must not lose acknowledged appends
	// in any durability mode (only power loss may).
	crash(s)
	s = open()
	hist.verify(t, s, "reopen after crash")
	crash(s)
	s = open()
	hist.verify(t, s, "reopen after second crash")
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s = open()
	hist.verify(t, s, "clean reopen after crashes")
}
