package mmapstore

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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
// loop) through a 1 MiB bufio.Writer to one os.File, timing file creation,
// Flush and Close. It reports both rates and their ratio, so the ratio is
// taken under the same machine load. b.N is the number of batches of each.
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

func benchAppendVsRaw(b *testing.B, size, batch int) {
	pool := benchPool()
	entries := make([][]byte, batch)
	ctx := b.Context()
	b.ReportAllocs()
	b.SetBytes(int64(size * batch))

	// Each phase starts with no dirty pages of the other (writeback
	// throttling would otherwise penalise whichever phase runs second) and
	// removes its files so repeated rounds do not fill the disk.
	dir := b.TempDir()
	// Phase 1: mmapstore, rolling over every 1M entries like the node.
	s, err := Open(filepath.Join(dir, "mmap"), DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	var total int64
	for range b.N {
		fillBatch(entries, pool, size, total)
		id := engine.SegmentID{Topic: "bench", Segment: uint64(total / 1_000_000)}
		if _, err := s.Append(ctx, id, entries); err != nil {
			b.Fatalf("append: %v", err)
		}
		total += int64(batch)
	}
	mmapSecs := time.Since(start).Seconds()
	b.StopTimer()
	if err := s.Close(); err != nil { // fsyncs: no dirty pages left
		b.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "mmap")); err != nil {
		b.Fatal(err)
	}

	// Phase 2: the raw reference, same framing and payloads.
	path := filepath.Join(dir, "raw.log")
	buf := make([]byte, batchLen(entries))
	b.StartTimer()
	start = time.Now()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	total = 0
	for range b.N {
		fillBatch(entries, pool, size, total)
		n := putBatch(buf, uint64(total), entries)
		if _, err := w.Write(buf[:n]); err != nil {
			b.Fatal(err)
		}
		total += int64(batch)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	rawSecs := time.Since(start).Seconds()
	b.StopTimer()
	if err := os.Remove(path); err != nil {
		b.Fatal(err)
	}

	mmapRate := float64(total) / mmapSecs
	rawRate := float64(total) / rawSecs
	b.ReportMetric(mmapRate, "mmap-entries/s")
	b.ReportMetric(rawRate, "raw-entries/s")
	b.ReportMetric(mmapRate/rawRate, "mmap/raw")
}
