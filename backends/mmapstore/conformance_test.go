package mmapstore

import (
	"log/slog"
	"runtime"
	"testing"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/engine/enginetest"
)

// testOptions keeps files small and the mapped sets tiny so growth,
// remapping, parking and many segments are exercised by ordinary tests.
func testOptions(tb testing.TB) Options {
	o := DefaultOptions()
	o.SegmentFileBytes = 64 << 10
	o.MaxMappedSegments = 4
	// Two open segments mapped at once: every test with more parks and
	// maps segments again under it.
	o.MaxOpenSegments = 2
	o.Logger = slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return o
}

func harness() enginetest.Harness {
	return enginetest.Harness{
		Open: func(tb testing.TB, dir string) (engine.SegmentStore, error) {
			return Open(dir, testOptions(tb))
		},
		OpenWith: func(tb testing.TB, dir string, opts engine.Options) (engine.SegmentStore, error) {
			o := testOptions(tb)
			o.Store = opts
			return Open(dir, o)
		},
		Crash: func(s engine.SegmentStore) { abandon(s.(*Store)) },
	}
}

// abandon releases the store as a killed process would: no fsync, no
// checkpoint, no clean close of anything.
func abandon(s *Store) {
	if err := s.close(true); err != nil {
		panic(err)
	}
}

func TestConformance(t *testing.T) {
	enginetest.Run(t, harness())
}

func TestConformanceAlways(t *testing.T) {
	// In always mode every append waits for the syncer goroutine and an
	// fsync. On a 2-core machine the suite's busy-looping readers hold both
	// Ps, and every wake-up after the fsync syscall then waits for a
	// 10 ms preemption slice (17 s for this suite under -race). More Ps than
	// busy goroutines lets the kernel's finer time slicing schedule them.
	prev := runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0)))
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	h := harness()
	h.Open = func(tb testing.TB, dir string) (engine.SegmentStore, error) {
		o := testOptions(tb)
		o.Store.Durability = engine.DurabilityAlways
		return Open(dir, o)
	}
	enginetest.Run(t, h)
}
