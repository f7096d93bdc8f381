package memstore

import (
	"testing"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/engine/enginetest"
)

func harness() enginetest.Harness {
	return enginetest.Harness{
		Open: func(testing.TB, string) (engine.SegmentStore, error) { return New(), nil },
		OpenWith: func(_ testing.TB, _ string, opts engine.Options) (engine.SegmentStore, error) {
			return NewWithOptions(Options{Store: opts})
		},
		NoReopen: true,
	}
}

func TestConformance(t *testing.T) { enginetest.Run(t, harness()) }

// TestConformanceSmallLimits runs the suite again with tiny limits, so the
// over-limit cases exercise a store configured away from the defaults.
func TestConformanceSmallLimits(t *testing.T) {
	h := harness()
	h.Limits = engine.Limits{MaxEntryBytes: 64 << 10, MaxBatchBytes: 256 << 10}
	h.Open = func(testing.TB, string) (engine.SegmentStore, error) {
		opts := DefaultOptions()
		opts.Store.Limits = h.Limits
		return NewWithOptions(opts)
	}
	enginetest.Run(t, h)
}

func BenchmarkStore(b *testing.B) { enginetest.Bench(b, harness()) }
