package mmapstore

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// TestGroupCommit: in always mode concurrent writers share sync rounds,
// every acknowledged entry is readable at once, and everything acknowledged
// survives a crash.
func TestGroupCommit(t *testing.T) {
	prev := runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0)))
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	dir := t.TempDir()
	o := testOptions(t)
	o.Store.Durability = engine.DurabilityAlways
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 32, 20
	ids := []engine.SegmentID{{Topic: "gc", Segment: 0}, {Topic: "gc", Segment: 1}}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	seen := make([]map[uint64]bool, len(ids))
	var mu sync.Mutex
	for i := range seen {
		seen[i] = map[uint64]bool{}
	}
	for w := range writers {
		wg.Go(func() {
			seg := w % len(ids)
			id := ids[seg]
			for i := range each {
				payload := []byte{byte(w), byte(i)}
				off, err := s.Append(t.Context(), id, [][]byte{payload})
				if err != nil {
					errs <- err
					return
				}
				// Acknowledged means visible.
				got, err := s.Read(t.Context(), id, off, 1, 1<<10)
				if err != nil || len(got) != 1 || !bytes.Equal(got[0], payload) {
					t.Errorf("read own write at %d: %q, %v", off, got, err)
					return
				}
				mu.Lock()
				if seen[seg][off] {
					t.Errorf("offset %d of %s handed out twice", off, id)
				}
				seen[seg][off] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rounds := s.syncer.rounds.Load()
	t.Logf("%d durable appends in %d sync rounds", writers*each, rounds)
	if rounds >= writers*each*3/4 {
		t.Fatalf("%d rounds for %d appends: writers are not sharing fsyncs", rounds, writers*each)
	}
	abandon(s)
	s = openT(t, dir, o)
	for seg, id := range ids {
		info, err := s.Stat(t.Context(), id)
		if err != nil || info.Entries != uint64(len(seen[seg])) {
			t.Fatalf("%s after crash: %+v, %v; want %d entries", id, info, err, len(seen[seg]))
		}
	}
}

// TestIntervalSyncs: in interval mode the ticker syncs dirty segments
// without anyone asking, and checkpoints follow once they lag enough.
func TestIntervalSyncs(t *testing.T) {
	o := testOptions(t)
	o.Store.Durability = engine.DurabilityInterval
	o.Store.SyncInterval = time.Millisecond
	s := openT(t, t.TempDir(), o)
	id := engine.SegmentID{Topic: "iv", Segment: 0}
	appendN(t, s, id, 0, 10)
	sg := s.segs[id]
	deadline := time.Now().Add(10 * time.Second)
	for {
		sg.mu.RLock()
		synced := sg.synced.entries
		sg.mu.RUnlock()
		if synced == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("interval syncer never covered the append (synced %d entries)", synced)
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	if s.syncer.rounds.Load() == 0 {
		t.Fatal("no sync round counted")
	}
}

// TestConcurrentCreate: many appenders racing to create the same and
// different segments each get dense, distinct offsets.
func TestConcurrentCreate(t *testing.T) {
	o := testOptions(t)
	o.Store.Durability = engine.DurabilityInterval
	s := openT(t, t.TempDir(), o)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			id := engine.SegmentID{Topic: "cc", Segment: uint64(w % 4)}
			if _, err := s.Append(t.Context(), id, [][]byte{{byte(w)}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for seg := range 4 {
		info, err := s.Stat(t.Context(), engine.SegmentID{Topic: "cc", Segment: uint64(seg)})
		if err != nil || info.Entries != 4 {
			t.Fatalf("segment %d: %+v, %v", seg, info, err)
		}
	}
}

// TestFsyncFailure: a failed fsync fails the appends waiting on it with
// ErrUnavailable and erases them, the segment refuses further appends (its
// page cache state is unknown), other segments carry on, and a reopen
// recovers exactly the acknowledged entries.
func TestFsyncFailure(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t)
	o.Store.Durability = engine.DurabilityAlways
	bad := engine.SegmentID{Topic: "fs", Segment: 0}
	good := engine.SegmentID{Topic: "fs", Segment: 1}
	var failing atomic.Bool
	var badPath atomic.Value
	s, err := open(dir, o, func(f *os.File) error {
		if failing.Load() && strings.TrimSuffix(f.Name(), tmpSuffix) == badPath.Load() { // f was opened under the temporary name
			return syscall.EIO
		}
		return fdatasync(f)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendN(t, s, bad, 0, 3)
	appendN(t, s, good, 0, 3)
	badPath.Store(s.segs[bad].path)
	failing.Store(true)
	_, err = s.Append(t.Context(), bad, [][]byte{{9}})
	if !errors.Is(err, engine.ErrUnavailable) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with a failing fsync: %v, want ErrUnavailable wrapping EIO", err)
	}
	if _, err := s.Append(t.Context(), bad, [][]byte{{9}}); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("append after the failure: %v, want sticky ErrUnavailable", err)
	}
	if err := s.Sync(t.Context()); err != nil {
		t.Logf("sync reports: %v", err)
	}
	appendN(t, s, good, 3, 2)
	failing.Store(false)
	if err := s.Close(); err != nil {
		t.Logf("close reports: %v", err)
	}
	s2 := openT(t, dir, o)
	verifyAll(t, s2, good, 5)
	if info, err := s2.Stat(t.Context(), bad); err != nil || info.Entries != 3 {
		t.Fatalf("failed segment after reopen: %+v, %v", info, err)
	}
	verifyAll(t, s2, bad, 3)
}
