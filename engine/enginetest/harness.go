package enginetest

import (
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// Harness tells the suite how to drive one SegmentStore implementation.
type Harness struct {
	// Open opens (or creates) a store on dir. It must be reopenable: a
	// second Open on the same dir after Close (or Crash) recovers the data,
	// unless NoReopen is set. Required. The store should use the default
	// durability of the backend; the suite never relies on a mode.
	Open func(tb testing.TB, dir string) (engine.SegmentStore, error)

	// OpenWith opens a store on dir with explicit common options (used by
	// Bench to pick the durability mode). Optional: when nil, Bench uses
	// Open and skips the durable cases.
	OpenWith func(tb testing.TB, dir string, opts engine.Options) (engine.SegmentStore, error)

	// Crash abandons s as if its process had been killed: no flush, no
	// clean close, but every resource (locks, descriptors, goroutines) is
	// released so the next Open on the same dir in this process works and
	// must recover. Optional: when nil the crash cases are skipped.
	Crash func(s engine.SegmentStore)

	// NoReopen marks a store that keeps nothing across Open calls (purely
	// in memory): the reopen and crash cases are skipped.
	NoReopen bool

	// Limits are the limits the store enforces; the zero value means
	// engine.DefaultLimits().
	Limits engine.Limits
}

func (h Harness) limits() engine.Limits {
	if h.Limits == (engine.Limits{}) {
		return engine.DefaultLimits()
	}
	return h.Limits
}

// open opens a store and closes it when the test ends (a second Close of a
// store the test already closed is a no-op by contract).
func (h Harness) open(tb testing.TB, dir string) engine.SegmentStore {
	tb.Helper()
	s, err := h.Open(tb, dir)
	if err != nil {
		tb.Fatalf("open %s: %v", dir, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close at cleanup: %v", err)
		}
	})
	return s
}
