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
// process, which is less sensitive to other load on a shared machine) and
// their ratios. b.N is the number of batches of each.
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

// phaseClock accumulates wall and CPU time over the slices of one phase.
type phaseClock struct {
	wall, cpu time.Duration
	w0        time.Time
	c0        time.Duration
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (c *phaseClock) start() { c.w0, c.c0 = time.Now(), cpuNow() }
func (c *phaseClock) stop() {
	c.wall += time.Since(c.w0)
	c.cpu += cpuNow() - c.c0
}

func benchAppendVsRaw(b *testing.B, size, batch int) {
	const slices = 8
	pool := benchPool()
	entries := make([][]byte, batch)
	ctx := b.Context()
	dir := b.TempDir()
	s, err := Open(filepath.Join(dir, "mmap"), DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "raw.log")
	buf := make([]byte, batchHeaderLen+batch*(entryHeaderLen+size))
	var (
		mm, raw       phaseClock
		mmN, rawN     int64
		f             *os.File
		w             *bufio.Writer
		done, perPart = 0, max(1, b.N/slices)
	)
	b.ReportAllocs()
	b.SetBytes(int64(size * batch))
	b.ResetTimer()
	for done < b.N {
		part := min(perPart, b.N-done)
		mm.start()
		for range part {
			fillBatch(entries, pool, size, mmN)
			// Roll over every 1M entries like the node.
			id := engine.SegmentID{Topic: "bench", Segment: uint64(mmN / 1_000_000)}
			if _, err := s.Append(ctx, id, entries); err != nil {
				b.Fatalf("append: %v", err)
			}
			mmN += int64(batch)
		}
		mm.stop()
		raw.start()
		if f == nil {
			if f, err = os.Create(path); err != nil {
				b.Fatal(err)
			}
			w = bufio.NewWriterSize(f, 1<<20)
		}
		for range part {
			fillBatch(entries, pool, size, rawN)
			n := putBatch(buf, uint64(rawN), entries)
			if _, err := w.Write(buf[:n]); err != nil {
				b.Fatal(err)
			}
			rawN += int64(batch)
		}
		if done+part == b.N {
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
		}
		raw.stop()
		done += part
	}
	b.StopTimer()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	rate := func(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }
	b.ReportMetric(rate(mmN, mm.wall), "mmap-entries/s")
	b.ReportMetric(rate(rawN, raw.wall), "raw-entries/s")
	b.ReportMetric(rate(mmN, mm.wall)/rate(rawN, raw.wall), "mmap/raw")
	b.ReportMetric(rate(mmN, mm.cpu)/rate(rawN, raw.cpu), "mmap/raw-cpu")
	b.ReportMetric(rate(mmN, mm.cpu), "mmap-entries/cpu-s")
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
