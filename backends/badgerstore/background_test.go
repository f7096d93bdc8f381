package badgerstore

import (
	"runtime"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// TestCloseStopsGoroutines runs a store with every background goroutine
// active and ticking fast (interval syncer, value-log GC) and checks that
// Close leaves no goroutine behind, badger's included.
func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	o := engine.DefaultOptions()
	o.Durability = engine.DurabilityInterval
	o.SyncInterval = time.Millisecond
	opts := testOptions(t, o)
	opts.ValueLogGCInterval = time.Millisecond
	s, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	id := engine.SegmentID{Topic: "bg", Segment: 0}
	big := make([]byte, 4<<10) // above the test value threshold: value log
	for i := range 50 {
		if _, err := s.Append(t.Context(), id, [][]byte{big, big}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if err := s.Delete(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the syncer and the GC loop to tick", func() bool { return s.syncRuns.Load() >= 3 && s.gcRuns.Load() >= 3 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}
