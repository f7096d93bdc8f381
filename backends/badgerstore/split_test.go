package badgerstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/walrus-go/walrus/engine"
)

var errInjected = errors.New("injected failure")

func openTest(t *testing.T, dir string, durability engine.Durability) *Store {
	t.Helper()
	o := engine.DefaultOptions()
	o.Durability = durability
	s, err := Open(dir, testOptions(t, o))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// bigBatch is n entries of 100 bytes whose content depends on (tag, i).
func bigBatch(tag byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		e := bytes.Repeat([]byte{tag}, 100)
		copy(e, fmt.Sprintf("%c-%d", tag, i))
		out[i] = e
	}
	return out
}

func readAllT(t *testing.T, s *Store, id engine.SegmentID) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		got, err := s.Read(t.Context(), id, uint64(len(out)), 500, 1<<20)
		if err != nil {
			t.Fatalf("read %s at %d: %v", id, len(out), err)
		}
		if len(got) == 0 {
			return out
		}
		out = append(out, got...)
	}
}

func sameEntries(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: entry %d = %q, want %q", what, i, got[i], want[i])
		}
	}
}

// TestSplitAppend appends a batch far larger than one badger transaction
// (the test memtable is 1 MiB, so a transaction holds ~150 KiB): it must
// be written in several chunks and still read back whole.
func TestSplitAppend(t *testing.T) {
	s := openTest(t, t.TempDir(), engine.DurabilityNone)
	id := engine.SegmentID{Topic: "split", Segment: 0}
	var chunks int
	s.afterSplitChunk = func(c int) error { chunks = c; return nil }
	head := bigBatch('a', 3)
	big := bigBatch('b', 5000) // ~0.6 MB with keys
	if _, err := s.Append(t.Context(), id, head); err != nil {
		t.Fatal(err)
	}
	first, err := s.Append(t.Context(), id, big)
	if err != nil || first != 3 {
		t.Fatalf("big append = %d, %v; want 3, nil", first, err)
	}
	if chunks < 2 {
		t.Fatalf("big append committed in %d chunks; the test no longer exercises the split path", chunks)
	}
	sameEntries(t, "after split append", readAllT(t, s, id), append(head, big...))
}

// TestSplitAppendInterrupted fails a split append after its first chunk, as
// a crash there would: nothing of the batch may be visible, the next append
// takes the same offsets (overwriting the orphan chunk), and the state
// survives reopen.
func TestSplitAppendInterrupted(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, engine.DurabilityNone)
	id := engine.SegmentID{Topic: "split", Segment: 0}
	head := bigBatch('a', 10)
	if _, err := s.Append(t.Context(), id, head); err != nil {
		t.Fatal(err)
	}
	s.afterSplitChunk = func(int) error { return errInjected }
	_, err := s.Append(t.Context(), id, bigBatch('x', 5000))
	if !errors.Is(err, errInjected) || !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("interrupted append = %v, want the injected failure as ErrUnavailable", err)
	}
	s.afterSplitChunk = nil
	if info, _ := s.Stat(t.Context(), id); info.Entries != 10 {
		t.Fatalf("after interrupted append: %d entries, want 10", info.Entries)
	}
	got, err := s.Read(t.Context(), id, 10, 10, 1000)
	if err != nil || len(got) != 0 {
		t.Fatalf("read at 10 after interrupted append = %d entries, %v; want none", len(got), err)
	}
	// The orphan chunk's keys really are on disk, beyond the count.
	if err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(entryKey(id, 10))
		return err
	}); err != nil {
		t.Fatalf("orphan key of the interrupted chunk: %v (the test no longer exercises orphans)", err)
	}
	tail := bigBatch('c', 2)
	if first, err := s.Append(t.Context(), id, tail); err != nil || first != 10 {
		t.Fatalf("append after interrupted append = %d, %v; want 10", first, err)
	}
	want := append(append([][]byte{}, head...), tail...)
	sameEntries(t, "after interrupted split", readAllT(t, s, id), want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, engine.DurabilityNone)
	sameEntries(t, "after reopen", readAllT(t, s, id), want)
	// Delete removes the orphans too.
	if err := s.Delete(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, s, entryKeyPrefix(id)); n != 0 {
		t.Fatalf("%d entry keys left after delete", n)
	}
}

func countKeys(t *testing.T, s *Store, prefix []byte) int {
	t.Helper()
	n := 0
	if err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInterruptedDeleteFinishedOnOpen leaves a delete half done (meta gone,
// marker and entries present, as after a crash inside Delete) and checks
// Open finishes it, so a re-created segment starts clean.
func TestInterruptedDeleteFinishedOnOpen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, engine.DurabilityNone)
	id := engine.SegmentID{Topic: "del", Segment: 4}
	keep := engine.SegmentID{Topic: "del", Segment: 5}
	if _, err := s.Append(t.Context(), id, bigBatch('d', 3000)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(t.Context(), keep, bigBatch('k', 5)); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Delete(metaKey(id)); err != nil {
			return err
		}
		return txn.Set(deletingKey(id), nil)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, engine.DurabilityNone)
	if n := countKeys(t, s, entryKeyPrefix(id)); n != 0 {
		t.Fatalf("%d entry keys of the deleted segment left after open", n)
	}
	if n := countKeys(t, s, []byte{kindDeleting}); n != 0 {
		t.Fatalf("%d deleting markers left after open", n)
	}
	sameEntries(t, "neighbour", readAllT(t, s, keep), bigBatch('k', 5))
	if first, err := s.Append(t.Context(), id, [][]byte{[]byte("new")}); err != nil || first != 0 {
		t.Fatalf("re-created segment append = %d, %v; want 0", first, err)
	}
}

// TestEmptyWALFromCrash reproduces what a crash between badger truncating a
// flushed memtable WAL and removing it leaves behind (a zero-length .mem
// file, which badger alone refuses to open) and checks Open recovers.
func TestEmptyWALFromCrash(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, engine.DurabilityNone)
	id := engine.SegmentID{Topic: "wal", Segment: 0}
	want := bigBatch('w', 50)
	if _, err := s.Append(t.Context(), id, want); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00042.mem"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, engine.DurabilityNone)
	sameEntries(t, "after reopen with an empty WAL", readAllT(t, s, id), want)
	if _, err := os.Stat(filepath.Join(dir, "00042.mem")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty WAL still there: %v", err)
	}
}

// TestManyTinyEntries appends a batch whose bytes fit one badger transaction
// but whose entry count does not (badger also caps the number of keys per
// transaction): the committer reports it too big and the append is redone
// split, still atomic and dense.
func TestManyTinyEntries(t *testing.T) {
	s := openTest(t, t.TempDir(), engine.DurabilityNone)
	id := engine.SegmentID{Topic: "z", Segment: 0}
	var chunks int
	s.afterSplitChunk = func(c int) error { chunks = c; return nil }
	batch := make([][]byte, 3000)
	for i := range batch {
		batch[i] = []byte{}
	}
	batch[1234] = []byte("marker")
	if first, err := s.Append(t.Context(), id, batch); err != nil || first != 0 {
		t.Fatalf("append = %d, %v", first, err)
	}
	if chunks < 2 {
		t.Fatalf("committed in %d chunks; the test no longer exceeds badger's per-transaction key count", chunks)
	}
	sameEntries(t, "tiny entries", readAllT(t, s, id), batch)
}
