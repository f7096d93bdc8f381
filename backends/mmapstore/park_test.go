package mmapstore

import (
	"fmt"
	"sync"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// TestManyOpenSegmentsBounded: 600 open segments, at most 8 holding a
// mapping and a descriptor, written and read concurrently, sealed while
// parked, and intact after a clean reopen and after a crash once synced,
// in each durability mode.
func TestManyOpenSegmentsBounded(t *testing.T) {
	for _, mode := range []engine.Durability{engine.DurabilityNone, engine.DurabilityInterval, engine.DurabilityAlways} {
		t.Run(string(mode), func(t *testing.T) { testManyOpen(t, mode) })
	}
}

func testManyOpen(t *testing.T, mode engine.Durability) {
	const segs, bound = 600, 8
	dir := t.TempDir()
	o := testOptions(t)
	o.Store.Durability = mode
	o.MaxOpenSegments = bound
	id := func(i int) engine.SegmentID {
		return engine.SegmentID{Topic: fmt.Sprintf("t%d", i%50), Segment: uint64(i)}
	}
	s := openT(t, dir, o)
	counts := make([]uint64, segs)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for round := range 3 {
				for i := w; i < segs; i += 4 {
					appendN(t, s, id(i), counts[i], round+1)
					counts[i] += uint64(round + 1)
					verifyAll(t, s, id(i), counts[i])
				}
			}
		})
	}
	wg.Wait()
	check := func(when string) {
		t.Helper()
		maps, fds := countMapped(t, dir)
		// Sealed segments read map up to MaxMappedSegments more, without
		// a descriptor; the LOCK file holds one.
		if n := s.env.open.len(); n > bound || maps > bound+o.MaxMappedSegments || fds > bound+1 {
			t.Fatalf("%s: %d open segments counted, %d mappings, %d descriptors under dir; bound %d", when, n, maps, fds, bound)
		}
	}
	check("after writing")
	// Seal every tenth segment, most of them parked now.
	for i := 0; i < segs; i += 10 {
		if _, err := s.Seal(t.Context(), id(i)); err != nil {
			t.Fatalf("seal %s: %v", id(i), err)
		}
	}
	for i := range segs {
		verifyAll(t, s, id(i), counts[i])
	}
	check("after reading")
	s.Close()
	s = openT(t, dir, o)
	check("after reopen")
	for i := range segs {
		verifyAll(t, s, id(i), counts[i])
		if i%10 != 0 {
			appendN(t, s, id(i), counts[i], 2)
			counts[i] += 2
		}
	}
	check("after appending again")
	// A crash once synced loses nothing, parked or not.
	if err := s.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range segs {
		sg, err := s.lookup(id(i))
		if err != nil {
			t.Fatal(err)
		}
		sg.mu.RLock()
		w, synced := sg.written, sg.synced
		sg.mu.RUnlock()
		if synced != w {
			t.Fatalf("%s after Sync: synced to %+v, written %+v", id(i), synced, w)
		}
	}
	if mode == engine.DurabilityNone {
		return // nothing is promised across a crash
	}
	abandon(s)
	s = openT(t, dir, o)
	for i := range segs {
		verifyAll(t, s, id(i), counts[i])
	}
	check("after a crash")
}
