package mmapstore

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/engine/enginetest"
)

// benchHarness uses the production defaults (64 MiB files), not the tiny
// files of the unit tests.
func benchHarness() enginetest.Harness {
	return enginetest.Harness{
		Open: func(tb testing.TB, dir string) (engine.SegmentStore, error) {
			return Open(dir, DefaultOptions())
		},
		OpenWith: func(tb testing.TB, dir string, opts engine.Options) (engine.SegmentStore, error) {
			o := DefaultOptions()
			o.Store = opts
			return Open(dir, o)
		},
	}
}

// BenchmarkStore runs the shared engine benchmarks.
func BenchmarkStore(b *testing.B) {
	enginetest.Bench(b, benchHarness())
}

// BenchmarkAppendVsRaw measures, in one benchmark and one process, mmapstore
// appends (durability none) and the reference: plain buffered sequential
// writes of the same framed bytes (same batch format, CRCs computed in the
// loop) through a 1 MiB bufio.Writer to one os.File. The two alternate in
// slices of b.N/8 batches so drifting machine load hits both alike; the
// reference's time includes creating the file and its final Flush and
// Close. It reports both rates (wall clock and per CPU second of the
// process, which is less sensitive to other load on a shared machine),
// their ratios, and page faults per entry of each side (getrusage minor +
// major faults of the whole process during that side's slices). b.N is
// the number of batches of each. TestAppendVsRawSmoke runs it briefly.
//
// The fault counts are the guest kernel's. Under a shadow-paging
// hypervisor a first touch of a freshly mapped page also costs a
// host-level fault that no guest counter sees; there the CPU profile
// (time in runtime.memmove) is the witness.
func BenchmarkAppendVsRaw(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, batch := range []int{1, 128} {
			b.Run(fmt.Sprintf("%dB/Batch%d", size, batch), func(b *testing.B) {
				benchAppendVsRaw(b, size, batch)
			})
		}
	}
}

func benchPool() []byte {
	rng := rand.New(rand.NewPCG(7, 8))
	pool := make([]byte, 1<<20)
	for i := range pool {
		pool[i] = byte(rng.Uint32())
	}
	return pool
}

func fillBatch(entries [][]byte, pool []byte, size int, n int64) {
	for i := range entries {
		off := int((n + int64(i)) * 131 % int64(len(pool)-size))
		entries[i] = pool[off : off+size]
	}
}

// phaseClock accumulates wall time, CPU time and page faults (minor and
// major, as getrusage counts them for the whole process, background
// goroutines included) over the slices of one phase.
type phaseClock struct {
	wall, cpu time.Duration
	faults    int64
	w0        time.Time
	c0        time.Duration
	f0        int64
}

func cpuNow() (time.Duration, int64) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Minflt + ru.Majflt
}

func (c *phaseClock) start() {
	c.w0 = time.Now()
	c.c0, c.f0 = cpuNow()
}

func (c *phaseClock) stop() {
	c.wall += time.Since(c.w0)
	cpu, faults := cpuNow()
	c.cpu += cpu - c.c0
	c.faults += faults - c.f0
}

func (c *phaseClock) faultsPer(entries int64) float64 {
	return float64(c.faults) / float64(max(entries, 1))
}

func benchAppendVsRaw(b *testing.B, size, batch int) {
	b.ReportAllocs()
	b.SetBytes(int64(size * batch))
	r := runAppendVsRaw(b, b.TempDir(), size, batch, b.N, b)
	rate := func(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }
	b.ReportMetric(rate(r.mmN, r.mm.wall), "mmap-entries/s")
	b.ReportMetric(rate(r.rawN, r.raw.wall), "raw-entries/s")
	b.ReportMetric(rate(r.mmN, r.mm.wall)/rate(r.rawN, r.raw.wall), "mmap/raw")
	b.ReportMetric(rate(r.mmN, r.mm.cpu)/rate(r.rawN, r.raw.cpu), "mmap/raw-cpu")
	b.ReportMetric(rate(r.mmN, r.mm.cpu), "mmap-entries/cpu-s")
	b.ReportMetric(r.mm.faultsPer(r.mmN), "mmap-faults/entry")
	b.ReportMetric(r.raw.faultsPer(r.rawN), "raw-faults/entry")
}

// appendVsRaw is the outcome of one runAppendVsRaw.
type appendVsRaw struct {
	mm, raw   phaseClock
	mmN, rawN int64 // entries written by each side
}

// benchTimer is the part of *testing.B that runAppendVsRaw drives; the
// smoke test passes a no-op.
type benchTimer interface {
	ResetTimer()
	StopTimer()
}

// runAppendVsRaw writes n batches of batch entries of size bytes each,
// both into a Store in dir/mmap (durability none) and, framed the same
// way, through a 1 MiB bufio.Writer into dir/raw.log, alternating in
// eighths. Setup is outside the timer, and so is the Store's final Close
// (its fsync has no counterpart on the raw side).
func runAppendVsRaw(tb testing.TB, dir string, size, batch, n int, timer benchTimer) appendVsRaw {
	const slices = 8
	pool := benchPool()
	entries := make([][]byte, batch)
	ctx := tb.Context()
	s, err := Open(filepath.Join(dir, "mmap"), DefaultOptions())
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "raw.log")
	buf := make([]byte, batchHeaderLen+batch*(entryHeaderLen+size))
	var (
		r             appendVsRaw
		f             *os.File
		w             *bufio.Writer
		done, perPart = 0, max(1, n/slices)
	)
	timer.ResetTimer()
	for done < n {
		part := min(perPart, n-done)
		r.mm.start()
		for range part {
			fillBatch(entries, pool, size, r.mmN)
			// Roll over every 1M entries like the node.
			id := engine.SegmentID{Topic: "bench", Segment: uint64(r.mmN / 1_000_000)}
			if _, err := s.Append(ctx, id, entries); err != nil {
				tb.Fatalf("append: %v", err)
			}
			r.mmN += int64(batch)
		}
		r.mm.stop()
		r.raw.start()
		if f == nil {
			if f, err = os.Create(path); err != nil {
				tb.Fatal(err)
			}
			w = bufio.NewWriterSize(f, 1<<20)
		}
		for range part {
			fillBatch(entries, pool, size, r.rawN)
			n := putBatch(buf, uint64(r.rawN), entries)
			if _, err := w.Write(buf[:n]); err != nil {
				tb.Fatal(err)
			}
			r.rawN += int64(batch)
		}
		if done+part == n {
			if err := w.Flush(); err != nil {
				tb.Fatal(err)
			}
			if err := f.Close(); err != nil {
				tb.Fatal(err)
			}
		}
		r.raw.stop()
		done += part
	}
	timer.StopTimer()
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return r
}

// BenchmarkReadSealed reads a sealed segment of 1M 100-byte entries
// sequentially, 1000 entries per Read (a consumer's natural batch), and
// reports entries per wall second and per CPU second of the process.
func BenchmarkReadSealed(b *testing.B) {
	for _, sealed := range []bool{true, false} {
		name := "Sealed"
		if !sealed {
			name = "Open"
		}
		b.Run(name, func(b *testing.B) {
			const entries, chunk = 1 << 20, 1000
			s, err := Open(b.TempDir(), DefaultOptions())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			pool := benchPool()
			batch := make([][]byte, 1024)
			id := engine.SegmentID{Topic: "read", Segment: 0}
			for n := int64(0); n < entries; n += int64(len(batch)) {
				fillBatch(batch, pool, 100, n)
				if _, err := s.Append(b.Context(), id, batch); err != nil {
					b.Fatal(err)
				}
			}
			if sealed {
				if _, err := s.Seal(b.Context(), id); err != nil {
					b.Fatal(err)
				}
			}
			var clock phaseClock
			var total int64
			off := uint64(0)
			b.ReportAllocs()
			b.SetBytes(chunk * 100)
			b.ResetTimer()
			clock.start()
			for range b.N {
				got, err := s.Read(b.Context(), id, off, chunk, 1<<30)
				if err != nil || len(got) == 0 {
					b.Fatalf("read at %d: %d, %v", off, len(got), err)
				}
				total += int64(len(got))
				off += uint64(len(got))
				if off >= entries {
					off = 0
				}
			}
			clock.stop()
			b.ReportMetric(float64(total)/clock.wall.Seconds(), "entries/s")
			b.ReportMetric(float64(total)/clock.cpu.Seconds(), "entries/cpu-s")
		})
	}
}

type nopTimer struct{}

func (nopTimer) ResetTimer() {}
func (nopTimer) StopTimer()  {}

// TestAppendVsRawSmoke runs every case of BenchmarkAppendVsRaw for a few
// batches, so the benchmark keeps working (it asserts what was written,
// never how fast).
func TestAppendVsRawSmoke(t *testing.T) {
	for _, size := range []int{100, 1024} {
		for _, batch := range []int{1, 128} {
			t.Run(fmt.Sprintf("%dB/Batch%d", size, batch), func(t *testing.T) {
				const batches = 40
				dir := t.TempDir()
				r := runAppendVsRaw(t, dir, size, batch, batches, nopTimer{})
				want := int64(batches * batch)
				if r.mmN != want || r.rawN != want {
					t.Fatalf("wrote %d entries to the store and %d raw, want %d each", r.mmN, r.rawN, want)
				}
				if r.mm.faults < 0 || r.raw.faults < 0 || r.mm.wall <= 0 || r.raw.wall <= 0 {
					t.Fatalf("bad measurements: %+v", r)
				}
				fi, err := os.Stat(filepath.Join(dir, "raw.log"))
				if err != nil {
					t.Fatal(err)
				}
				if got, want := fi.Size(), int64(batches*(batchHeaderLen+batch*(entryHeaderLen+size))); got != want {
					t.Fatalf("raw.log is %d bytes, want %d", got, want)
				}
				s, err := Open(filepath.Join(dir, "mmap"), DefaultOptions())
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				info, err := s.Stat(t.Context(), engine.SegmentID{Topic: "bench", Segment: 0})
				if err != nil {
					t.Fatal(err)
				}
				if info.Entries != uint64(want) {
					t.Fatalf("store holds %d entries, want %d", info.Entries, want)
				}
			})
		}
	}
}
