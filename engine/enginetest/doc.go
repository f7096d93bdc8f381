// Package enginetest owns the conformance suite, the crash-kill harness and
// the shared benchmarks of the engine.SegmentStore contract. Every backend
// in this repository runs them, and so can a third party writing its own
// store or plugin: the package imports only engine and the standard library
// (testing included), so it adds nothing heavy to a test binary.
//
// # Running the suite against your store
//
// Write one test in your backend's package that describes how to open your
// store on a directory, and hand it to Run:
//
//	func TestConformance(t *testing.T) {
//		enginetest.Run(t, enginetest.Harness{
//			Open: func(tb testing.TB, dir string) (engine.SegmentStore, error) {
//				return mystore.Open(dir, mystore.DefaultOptions())
//			},
//			// Optional: abandon the store as if the process died (no
//			// flush, no clean close) so the next Open must recover.
//			Crash: func(s engine.SegmentStore) { s.(*mystore.Store).Abandon() },
//		})
//	}
//
// and run it with the race detector: go test -race -run TestConformance.
// Run executes named subtests (go test -run 'TestConformance/Seal' picks
// one); each subtest gets its own fresh directory from t.TempDir and closes
// every store it opened. Stores that live only in memory set
// Harness.NoReopen, which skips the reopen and crash cases. A store with
// limits other than engine.DefaultLimits declares them in Harness.Limits so
// the over-limit cases probe the right sizes.
//
// For benchmarks, call Bench from a Benchmark function; give
// Harness.OpenWith so Bench can choose the durability mode:
//
//	func BenchmarkStore(b *testing.B) { enginetest.Bench(b, harness) }
//
// go test -run '^$' -bench . -benchtime 2000x prints one line per case with
// ns/op, B/op, allocs/op, MB/s and entries/s.
//
// # Killing a real process
//
// Crash runs the crash-kill test: it re-executes the test binary as a child
// that appends to the store until it is SIGKILLed at a random moment, then
// reopens the directory and checks every acknowledged entry byte for byte,
// many times over. It needs only CrashHarness.Open and no TestMain, since
// the same Crash call plays the child's part in the child process:
//
//	func TestCrashKill(t *testing.T) {
//		enginetest.Crash(t, enginetest.CrashHarness{
//			Open: func(tb testing.TB, dir string, opts engine.Options) (engine.SegmentStore, error) {
//				o := mystore.DefaultOptions()
//				o.Store = opts
//				return mystore.Open(dir, o)
//			},
//		})
//	}
//
// # What the suite checks
//
// Everything engine's package documentation states: dense offsets from 0,
// atomic batches (an over-limit entry leaves nothing behind), byte-exact
// round trips (empty, 1-byte, 1 MiB and random binary entries), read bounds
// (entry count, byte budget, the at-least-one-entry rule, offset == count is
// empty, offset > count is ErrOutOfRange, not found), seal semantics,
// Stat/List/Delete, Sync, parallel writers on many segments and topics,
// concurrent readers that only ever see whole acknowledged batches, ErrClosed
// after Close, ErrInvalidName for unsafe topic names, cancelled contexts
// (errors.Is(err, context.Canceled), nothing written), buffer ownership, and
// reopen after a clean close and after a crash.
//
// The suite is deliberately fast (a few seconds under -race) so it can run
// on every change.
package enginetest
