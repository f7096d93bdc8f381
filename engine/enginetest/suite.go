package enginetest

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// Run runs every conformance case against the store described by h, each
// as a named subtest with a fresh directory.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("enginetest: Harness.Open is required")
	}
	if err := (engine.Options{Durability: engine.DurabilityNone, Limits: h.limits()}).Validate(); err != nil {
		t.Fatalf("enginetest: Harness.Limits: %v", err)
	}
	cases := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"DenseOffsets", testDenseOffsets},
		{"RoundTrip/EmptyEntries", testRoundTripEmpty},
		{"RoundTrip/OneByte", testRoundTripOneByte},
		{"RoundTrip/OneMiB", testRoundTripOneMiB},
		{"RoundTrip/RandomBinary", testRoundTripRandom},
		{"BufferOwnership", testBufferOwnership},
		{"BatchAtomicity/OverLimitEntry", testAtomicOverLimitEntry},
		{"BatchAtomicity/OverLimitBatch", testAtomicOverLimitBatch},
		{"BatchAtomicity/EmptyBatch", testAtomicEmptyBatch},
		{"ReadBounds/MaxEntries", testReadMaxEntries},
		{"ReadBounds/MaxBytes", testReadMaxBytes},
		{"ReadBounds/AtLeastOneEntry", testReadAtLeastOne},
		{"ReadBounds/AtCount", testReadAtCount},
		{"ReadBounds/PastEnd", testReadPastEnd},
		{"ReadBounds/EmptySegment", testReadEmptySegment},
		{"ReadBounds/NotFound", testReadNotFound},
		{"ReadBounds/InvalidBounds", testReadInvalidBounds},
		{"Seal", testSeal},
		{"Seal/NotFound", testSealNotFound},
		{"StatListDelete", testStatListDelete},
		{"Sync", testSync},
		{"Parallel/ManySegmentsAndTopics", testParallelSegments},
		{"Parallel/AppendSameSegment", testParallelSameSegment},
		{"Parallel/WriterWithReaders", testWriterWithReaders},
		{"Closed", testClosed},
		{"InvalidNames", testInvalidNames},
		{"CancelledContext", testCancelledContext},
		{"Reopen/CleanClose", testReopenClean},
		{"Reopen/AfterDelete", testReopenAfterDelete},
		{"Reopen/Crash", testReopenCrash},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, h) })
	}
}

func requireReopen(t *testing.T, h Harness) {
	t.Helper()
	if h.NoReopen {
		t.Skip("store keeps nothing across Open (Harness.NoReopen)")
	}
}

func testDenseOffsets(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "dense", Segment: 3}
	next := uint64(0)
	var all [][]byte
	for _, n := range []int{1, 3, 5, 1, 16} {
		batch := patternEntries(next, n)
		if first := mustAppend(t, s, id, batch); first != next {
			t.Fatalf("append of %d entries returned first offset %d, want %d", n, first, next)
		}
		next += uint64(n)
		all = append(all, batch...)
	}
	info := mustStat(t, s, id)
	want := engine.SegmentInfo{ID: id, Entries: next, Bytes: sumBytes(all)}
	if info != want {
		t.Fatalf("stat = %+v, want %+v", info, want)
	}
	equalEntries(t, "read back", readAll(t, s, id), all)

	// Every segment numbers its entries from 0 on its own: another segment
	// of the same topic, and the same segment number in another topic.
	for _, other := range []engine.SegmentID{{Topic: "dense", Segment: 4}, {Topic: "dense2", Segment: 3}, {Topic: "dens", Segment: 3}} {
		if first := mustAppend(t, s, other, [][]byte{[]byte("x")}); first != 0 {
			t.Fatalf("first append to new segment %s returned offset %d, want 0", other, first)
		}
	}
	if got := mustStat(t, s, id).Entries; got != next {
		t.Fatalf("appends to other segments changed %s to %d entries, want %d", id, got, next)
	}
}

func roundTrip(t *testing.T, s engine.SegmentStore, id engine.SegmentID, entries [][]byte) {
	t.Helper()
	mustAppend(t, s, id, entries)
	equalEntries(t, "read in chunks", readAll(t, s, id), entries)
	// One entry at a time, by offset, as a random reader would.
	for i, want := range entries {
		got, err := s.Read(t.Context(), id, uint64(i), 1, 1)
		if err != nil {
			t.Fatalf("read %s at %d: %v", id, i, err)
		}
		equalEntries(t, "read one at offset", got, [][]byte{want})
	}
	if info := mustStat(t, s, id); info.Entries != uint64(len(entries)) || info.Bytes != sumBytes(entries) {
		t.Fatalf("stat = %+v, want %d entries, %d bytes", info, len(entries), sumBytes(entries))
	}
}

func testRoundTripEmpty(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "empty", Segment: 0}
	entries := [][]byte{{}, nil, {}, []byte("between"), {}}
	mustAppend(t, s, id, entries)
	got := readAll(t, s, id)
	if len(got) != len(entries) {
		t.Fatalf("got %d entries, want %d", len(got), len(entries))
	}
	for i := range entries {
		if !bytes.Equal(got[i], entries[i]) {
			t.Fatalf("entry %d = %q, want %q", i, got[i], entries[i])
		}
	}
	if info := mustStat(t, s, id); info.Bytes != 7 {
		t.Fatalf("stat bytes = %d, want 7 (empty entries count 0)", info.Bytes)
	}
}

func testRoundTripOneByte(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	var entries [][]byte
	for _, b := range []byte{0, 1, '\n', 0x7f, 0x80, 0xff} {
		entries = append(entries, []byte{b})
	}
	roundTrip(t, s, engine.SegmentID{Topic: "one", Segment: 0}, entries)
}

func testRoundTripOneMiB(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	l := h.limits()
	size := min(1<<20, l.MaxEntryBytes)
	rng := rand.New(rand.NewPCG(1, 2))
	entries := make([][]byte, 3)
	for i := range entries {
		e := make([]byte, size)
		for j := range e {
			e[j] = byte(rng.Uint32())
		}
		entries[i] = e
	}
	id := engine.SegmentID{Topic: "big", Segment: 0}
	if 3*size <= l.MaxBatchBytes {
		roundTrip(t, s, id, entries)
		return
	}
	for _, e := range entries {
		mustAppend(t, s, id, [][]byte{e})
	}
	equalEntries(t, "read back", readAll(t, s, id), entries)
}

func testRoundTripRandom(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	rng := rand.New(rand.NewPCG(3, 4))
	id := engine.SegmentID{Topic: "random", Segment: 7}
	var all [][]byte
	for range 10 {
		batch := randomEntries(rng, 1+rng.IntN(40), 3000)
		mustAppend(t, s, id, batch)
		all = append(all, batch...)
	}
	equalEntries(t, "read back", readAll(t, s, id), all)
	// Reads starting at arbitrary offsets with arbitrary bounds return the
	// right slice of history.
	for range 50 {
		off := rng.IntN(len(all) + 1)
		got, err := s.Read(t.Context(), id, uint64(off), 1+rng.IntN(20), 1+rng.IntN(20000))
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if off+len(got) > len(all) {
			t.Fatalf("read at %d returned %d entries, only %d exist", off, len(got), len(all)-off)
		}
		equalEntries(t, "random read", got, all[off:off+len(got)])
		if off < len(all) && len(got) == 0 {
			t.Fatalf("read at %d < count %d returned nothing", off, len(all))
		}
	}
}

func testBufferOwnership(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "own", Segment: 0}
	buf := []byte("original")
	mustAppend(t, s, id, [][]byte{buf, buf[:4]})
	copy(buf, "XXXXXXXX") // the caller reuses its buffer after Append returned
	want := [][]byte{[]byte("original"), []byte("orig")}
	got := readAll(t, s, id)
	equalEntries(t, "after caller reused its append buffer", got, want)
	for _, e := range got {
		for i := range e {
			e[i] = 'Y' // the caller owns what Read returned
		}
	}
	equalEntries(t, "after caller modified read results", readAll(t, s, id), want)
}

// checkUnchanged verifies a failed append left the segment exactly as it was.
func checkUnchanged(t *testing.T, s engine.SegmentStore, id engine.SegmentID, before [][]byte) {
	t.Helper()
	info := mustStat(t, s, id)
	if info.Entries != uint64(len(before)) || info.Bytes != sumBytes(before) {
		t.Fatalf("failed append changed stat to %+v, want %d entries, %d bytes", info, len(before), sumBytes(before))
	}
	equalEntries(t, "after failed append", readAll(t, s, id), before)
	next := patternEntries(uint64(len(before)), 2)
	if first := mustAppend(t, s, id, next); first != uint64(len(before)) {
		t.Fatalf("append after failed append got offset %d, want %d", first, len(before))
	}
}

func testAtomicOverLimitEntry(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	l := h.limits()
	id := engine.SegmentID{Topic: "atomic", Segment: 0}
	before := patternEntries(0, 3)
	mustAppend(t, s, id, before)
	huge := make([]byte, l.MaxEntryBytes+1)
	_, err := s.Append(t.Context(), id, [][]byte{[]byte("ok"), {}, huge, []byte("after")})
	wantErr(t, "append with an over-limit entry", err, engine.ErrInvalidArgument)
	checkUnchanged(t, s, id, before)

	// A rejected first append creates nothing.
	fresh := engine.SegmentID{Topic: "atomic", Segment: 1}
	_, err = s.Append(t.Context(), fresh, [][]byte{[]byte("ok"), huge})
	wantErr(t, "first append with an over-limit entry", err, engine.ErrInvalidArgument)
	_, err = s.Stat(t.Context(), fresh)
	wantErr(t, "stat after rejected first append", err, engine.ErrNotFound)
}

func testAtomicOverLimitBatch(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	l := h.limits()
	id := engine.SegmentID{Topic: "atomic", Segment: 0}
	before := patternEntries(0, 5)
	mustAppend(t, s, id, before)
	// Every entry is within the limit, the total is not. The entries share
	// one buffer so the test allocates one MaxEntryBytes-sized slice.
	one := make([]byte, l.MaxEntryBytes)
	n := l.MaxBatchBytes/l.MaxEntryBytes + 1
	batch := make([][]byte, n)
	for i := range batch {
		batch[i] = one
	}
	_, err := s.Append(t.Context(), id, batch)
	wantErr(t, "append of an over-limit batch", err, engine.ErrInvalidArgument)
	checkUnchanged(t, s, id, before)
}

func testAtomicEmptyBatch(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "atomic", Segment: 0}
	for _, batch := range [][][]byte{nil, {}} {
		_, err := s.Append(t.Context(), id, batch)
		wantErr(t, "append of an empty batch", err, engine.ErrInvalidArgument)
	}
	_, err := s.Stat(t.Context(), id)
	wantErr(t, "stat after rejected empty batch", err, engine.ErrNotFound)
}

func testSeal(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "seal", Segment: 0}
	all := patternEntries(0, 7)
	mustAppend(t, s, id, all)
	want := engine.SegmentInfo{ID: id, Entries: 7, Bytes: sumBytes(all), Sealed: true}
	info, err := s.Seal(t.Context(), id)
	if err != nil || info != want {
		t.Fatalf("seal = %+v, %v; want %+v", info, err, want)
	}
	_, err = s.Append(t.Context(), id, [][]byte{[]byte("late")})
	wantErr(t, "append after seal", err, engine.ErrSealed)
	info, err = s.Seal(t.Context(), id)
	if err != nil || info != want {
		t.Fatalf("second seal = %+v, %v; want the same %+v", info, err, want)
	}
	if got := mustStat(t, s, id); got != want {
		t.Fatalf("stat after seal = %+v, want %+v", got, want)
	}
	equalEntries(t, "read of sealed segment", readAll(t, s, id), all)
	// Sealing one segment leaves its neighbours open.
	next := engine.SegmentID{Topic: "seal", Segment: 1}
	if first := mustAppend(t, s, next, [][]byte{[]byte("next")}); first != 0 {
		t.Fatalf("append to next segment got %d, want 0", first)
	}
	list, err := s.List(t.Context(), "seal")
	if err != nil || len(list) != 2 || !list[0].Sealed || list[1].Sealed {
		t.Fatalf("list = %+v, %v; want segment 0 sealed, 1 open", list, err)
	}
}

func testSealNotFound(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	_, err := s.Seal(t.Context(), engine.SegmentID{Topic: "seal", Segment: 9})
	wantErr(t, "seal of a missing segment", err, engine.ErrNotFound)
	_, err = s.Stat(t.Context(), engine.SegmentID{Topic: "seal", Segment: 9})
	wantErr(t, "stat after failed seal", err, engine.ErrNotFound)
}

func testStatListDelete(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	ctx := t.Context()
	// Topics chosen so that one is a prefix of another and so that a
	// lexical order of segment numbers would differ from the numeric one.
	ids := []engine.SegmentID{
		{Topic: "a", Segment: 10}, {Topic: "b", Segment: 3}, {Topic: "a", Segment: 2},
		{Topic: "ab", Segment: 0}, {Topic: "a.b", Segment: 5}, {Topic: "a", Segment: 1},
		{Topic: "a", Segment: 1 << 40},
	}
	data := map[engine.SegmentID][][]byte{}
	for i, id := range ids {
		entries := patternEntries(uint64(i*10), i+1)
		mustAppend(t, s, id, entries)
		data[id] = entries
	}
	if _, err := s.Seal(ctx, engine.SegmentID{Topic: "a", Segment: 2}); err != nil {
		t.Fatal(err)
	}
	info := func(id engine.SegmentID) engine.SegmentInfo {
		return engine.SegmentInfo{ID: id, Entries: uint64(len(data[id])), Bytes: sumBytes(data[id]), Sealed: id == engine.SegmentID{Topic: "a", Segment: 2}}
	}
	listWant := func(topic string) []engine.SegmentInfo {
		var out []engine.SegmentInfo
		for id := range data {
			if topic == "" || id.Topic == topic {
				out = append(out, info(id))
			}
		}
		slices.SortFunc(out, func(x, y engine.SegmentInfo) int {
			if c := strings.Compare(x.ID.Topic, y.ID.Topic); c != 0 {
				return c
			}
			switch {
			case x.ID.Segment < y.ID.Segment:
				return -1
			case x.ID.Segment > y.ID.Segment:
				return 1
			}
			return 0
		})
		return out
	}
	checkList := func(topic string) {
		t.Helper()
		got, err := s.List(ctx, topic)
		if err != nil {
			t.Fatalf("list %q: %v", topic, err)
		}
		want := listWant(topic)
		if len(got) != len(want) || (len(want) > 0 && !slices.Equal(got, want)) {
			t.Fatalf("list %q =\n %+v\nwant\n %+v", topic, got, want)
		}
	}
	for _, id := range ids {
		if got := mustStat(t, s, id); got != info(id) {
			t.Fatalf("stat %s = %+v, want %+v", id, got, info(id))
		}
	}
	for _, topic := range []string{"", "a", "ab", "a.b", "b", "none"} {
		checkList(topic)
	}

	for _, del := range []engine.SegmentID{{Topic: "a", Segment: 2}, {Topic: "ab", Segment: 0}} {
		if err := s.Delete(ctx, del); err != nil {
			t.Fatalf("delete %s: %v", del, err)
		}
		delete(data, del)
		wantErr(t, "second delete of "+del.String(), s.Delete(ctx, del), engine.ErrNotFound)
		_, err := s.Stat(ctx, del)
		wantErr(t, "stat after delete", err, engine.ErrNotFound)
		_, err = s.Read(ctx, del, 0, 1, 1)
		wantErr(t, "read after delete", err, engine.ErrNotFound)
		_, err = s.Seal(ctx, del)
		wantErr(t, "seal after delete", err, engine.ErrNotFound)
	}
	for _, topic := range []string{"", "a", "ab", "a.b"} {
		checkList(topic)
	}
	for id, entries := range data {
		equalEntries(t, "survivor "+id.String()+" after deletes", readAll(t, s, id), entries)
	}
	wantErr(t, "delete of a missing segment", s.Delete(ctx, engine.SegmentID{Topic: "zzz", Segment: 0}), engine.ErrNotFound)
}

func testSync(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "sync", Segment: 0}
	all := patternEntries(0, 20)
	mustAppend(t, s, id, all)
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("second sync: %v", err)
	}
	equalEntries(t, "after sync", readAll(t, s, id), all)
}

func testClosed(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	ctx := t.Context()
	id := engine.SegmentID{Topic: "closed", Segment: 0}
	mustAppend(t, s, id, [][]byte{[]byte("x")})
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v, want nil", err)
	}
	_, err := s.Append(ctx, id, [][]byte{[]byte("y")})
	wantErr(t, "append after close", err, engine.ErrClosed)
	_, err = s.Append(ctx, engine.SegmentID{Topic: "closed", Segment: 1}, [][]byte{[]byte("y")})
	wantErr(t, "append to a new segment after close", err, engine.ErrClosed)
	_, err = s.Read(ctx, id, 0, 1, 1)
	wantErr(t, "read after close", err, engine.ErrClosed)
	_, err = s.Seal(ctx, id)
	wantErr(t, "seal after close", err, engine.ErrClosed)
	_, err = s.Stat(ctx, id)
	wantErr(t, "stat after close", err, engine.ErrClosed)
	_, err = s.List(ctx, "")
	wantErr(t, "list all after close", err, engine.ErrClosed)
	_, err = s.List(ctx, "closed")
	wantErr(t, "list topic after close", err, engine.ErrClosed)
	wantErr(t, "delete after close", s.Delete(ctx, id), engine.ErrClosed)
	wantErr(t, "sync after close", s.Sync(ctx), engine.ErrClosed)
}

func invalidTopics() map[string]string {
	return map[string]string{
		"parent":    "../x",
		"slash":     "/",
		"abs":       "/etc/passwd",
		"inner":     "a/b",
		"nul":       "a\x00b",
		"empty":     "",
		"dotdot":    "..",
		"too long":  strings.Repeat("x", engine.MaxTopicBytes+1),
		"backslash": `a\b`,
		"newline":   "a\nb",
	}
}

func testInvalidNames(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	ctx := t.Context()
	for what, topic := range invalidTopics() {
		id := engine.SegmentID{Topic: topic, Segment: 0}
		_, err := s.Append(ctx, id, [][]byte{[]byte("x")})
		wantErr(t, "append to topic "+what, err, engine.ErrInvalidName)
		_, err = s.Read(ctx, id, 0, 1, 1)
		wantErr(t, "read of topic "+what, err, engine.ErrInvalidName)
		_, err = s.Seal(ctx, id)
		wantErr(t, "seal of topic "+what, err, engine.ErrInvalidName)
		_, err = s.Stat(ctx, id)
		wantErr(t, "stat of topic "+what, err, engine.ErrInvalidName)
		wantErr(t, "delete of topic "+what, s.Delete(ctx, id), engine.ErrInvalidName)
		if topic != "" { // List("") means every topic
			_, err = s.List(ctx, topic)
			wantErr(t, "list of topic "+what, err, engine.ErrInvalidName)
		}
	}
	// The longest valid name works; nothing was created by the failures.
	long := engine.SegmentID{Topic: strings.Repeat("y", engine.MaxTopicBytes), Segment: 0}
	mustAppend(t, s, long, [][]byte{[]byte("ok")})
	list, err := s.List(ctx, "")
	if err != nil || len(list) != 1 || list[0].ID != long {
		t.Fatalf("list after invalid names = %+v, %v; want only %s", list, err, long)
	}
}

func testCancelledContext(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "ctx", Segment: 0}
	all := patternEntries(0, 3)
	mustAppend(t, s, id, all)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Append(ctx, id, [][]byte{[]byte("never")})
	wantErr(t, "append with cancelled ctx", err, context.Canceled)
	_, err = s.Append(ctx, engine.SegmentID{Topic: "ctx", Segment: 1}, [][]byte{[]byte("never")})
	wantErr(t, "append to a new segment with cancelled ctx", err, context.Canceled)
	_, err = s.Read(ctx, id, 0, 1, 1)
	wantErr(t, "read with cancelled ctx", err, context.Canceled)
	_, err = s.Seal(ctx, id)
	wantErr(t, "seal with cancelled ctx", err, context.Canceled)
	_, err = s.Stat(ctx, id)
	wantErr(t, "stat with cancelled ctx", err, context.Canceled)
	_, err = s.List(ctx, "")
	wantErr(t, "list with cancelled ctx", err, context.Canceled)
	wantErr(t, "delete with cancelled ctx", s.Delete(ctx, id), context.Canceled)
	wantErr(t, "sync with cancelled ctx", s.Sync(ctx), context.Canceled)

	// None of the cancelled calls changed anything.
	if info := mustStat(t, s, id); info.Entries != 3 || info.Sealed {
		t.Fatalf("stat after cancelled calls = %+v, want 3 entries, open", info)
	}
	_, err = s.Stat(t.Context(), engine.SegmentID{Topic: "ctx", Segment: 1})
	wantErr(t, "segment of a cancelled first append", err, engine.ErrNotFound)
	equalEntries(t, "after cancelled calls", readAll(t, s, id), all)
}
