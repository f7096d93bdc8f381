package enginetest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// benchSegmentEntries is where the append benchmarks roll over to the next
// segment, the node's default max_segment_entries: it keeps a segment at a
// realistic size however large b.N gets.
const benchSegmentEntries = 1_000_000

// readBenchEntries is the size of the sealed segment the read cases scan.
const readBenchEntries = 1 << 16

// Bench runs the shared benchmarks against the store described by h. Each
// case reports entries/s besides the usual ns/op, B/op and MB/s.
func Bench(b *testing.B, h Harness) {
	if h.Open == nil {
		b.Fatal("enginetest: Harness.Open is required")
	}
	for _, size := range []struct {
		name  string
		bytes int
	}{{"100B", 100}, {"1KiB", 1024}} {
		for _, batch := range []int{1, 128} {
			b.Run(fmt.Sprintf("Append/%s/Batch%d", size.name, batch), func(b *testing.B) {
				benchAppend(b, h, size.bytes, batch)
			})
		}
	}
	b.Run("Read/Sequential/100B", func(b *testing.B) { benchReadSequential(b, h) })
	b.Run("Read/Random/100B", func(b *testing.B) { benchReadRandom(b, h) })
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("AppendDurable/Always/Writers%d", writers), func(b *testing.B) {
			benchDurable(b, h, writers)
		})
	}
}

// openBench opens a store with durability d when the harness allows it,
// else with the harness default (only acceptable for DurabilityNone cases).
func (h Harness) openBench(b *testing.B, d engine.Durability) engine.SegmentStore {
	b.Helper()
	dir := b.TempDir()
	var (
		s   engine.SegmentStore
		err error
	)
	if h.OpenWith != nil {
		opts := engine.DefaultOptions()
		opts.Durability = d
		opts.Limits = h.limits()
		s, err = h.OpenWith(b, dir, opts)
	} else {
		if d != engine.DurabilityNone {
			b.Skipf("durability %s needs Harness.OpenWith", d)
		}
		s, err = h.Open(b, dir)
	}
	if err != nil {
		b.Fatalf("open %s: %v", dir, err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Errorf("close: %v", err)
		}
	})
	return s
}

// payloadPool is random bytes that benchmark entries are cut from, so the
// payload is incompressible and generating it costs nothing in the loop.
func payloadPool() []byte {
	rng := rand.New(rand.NewPCG(7, 8))
	pool := make([]byte, 1<<20)
	for i := range pool {
		pool[i] = byte(rng.Uint32())
	}
	return pool
}

func reportEntries(b *testing.B, entries int64) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(entries)/s, "entries/s")
	}
}

func benchAppend(b *testing.B, h Harness, size, batch int) {
	s := h.openBench(b, engine.DurabilityNone)
	pool := payloadPool()
	entries := make([][]byte, batch)
	ctx := b.Context()
	var total int64
	b.ReportAllocs()
	b.SetBytes(int64(size * batch))
	for b.Loop() {
		for i := range entries {
			off := int((total + int64(i)) * 131 % int64(len(pool)-size))
			entries[i] = pool[off : off+size]
		}
		id := engine.SegmentID{Topic: "bench", Segment: uint64(total / benchSegmentEntries)}
		if _, err := s.Append(ctx, id, entries); err != nil {
			b.Fatalf("append: %v", err)
		}
		total += int64(batch)
	}
	reportEntries(b, total)
}

// sealedBenchSegment writes readBenchEntries 100-byte entries and seals them.
func sealedBenchSegment(b *testing.B, s engine.SegmentStore) engine.SegmentID {
	b.Helper()
	id := engine.SegmentID{Topic: "bench-read", Segment: 0}
	pool := payloadPool()
	batch := make([][]byte, 1024)
	for n := 0; n < readBenchEntries; n += len(batch) {
		for i := range batch {
			off := (n + i) * 100 % (len(pool) - 100)
			batch[i] = pool[off : off+100]
		}
		if _, err := s.Append(b.Context(), id, batch); err != nil {
			b.Fatalf("prepare: %v", err)
		}
	}
	if _, err := s.Seal(b.Context(), id); err != nil {
		b.Fatalf("prepare seal: %v", err)
	}
	return id
}

func benchReadSequential(b *testing.B, h Harness) {
	s := h.openBench(b, engine.DurabilityNone)
	id := sealedBenchSegment(b, s)
	const chunk = 128
	ctx := b.Context()
	var total int64
	off := uint64(0)
	b.ReportAllocs()
	b.SetBytes(chunk * 100)
	for b.Loop() {
		got, err := s.Read(ctx, id, off, chunk, 1<<20)
		if err != nil {
			b.Fatalf("read at %d: %v", off, err)
		}
		if len(got) != chunk {
			b.Fatalf("read at %d returned %d entries, want %d", off, len(got), chunk)
		}
		total += int64(len(got))
		off += chunk
		if off == readBenchEntries {
			off = 0
		}
	}
	reportEntries(b, total)
}

func benchReadRandom(b *testing.B, h Harness) {
	s := h.openBench(b, engine.DurabilityNone)
	id := sealedBenchSegment(b, s)
	rng := rand.New(rand.NewPCG(9, 10))
	ctx := b.Context()
	var total int64
	b.ReportAllocs()
	b.SetBytes(100)
	for b.Loop() {
		off := rng.Uint64N(readBenchEntries)
		got, err := s.Read(ctx, id, off, 1, 1<<20)
		if err != nil || len(got) != 1 {
			b.Fatalf("read at %d: %d entries, %v", off, len(got), err)
		}
		total++
	}
	reportEntries(b, total)
}

// benchDurable runs writers closed-loop goroutines that each append one
// 100-byte entry per call in durability always, all to the same segment:
// every acknowledgement waits for an fsync, and the store may share one
// fsync among the writers waiting at the same time (group commit). b.N is
// the total number of appends across writers.
func benchDurable(b *testing.B, h Harness, writers int) {
	s := h.openBench(b, engine.DurabilityAlways)
	pool := payloadPool()
	id := engine.SegmentID{Topic: "bench-durable", Segment: 0}
	ctx := b.Context()
	// Create the segment outside the timed part.
	if _, err := s.Append(ctx, id, [][]byte{pool[:100]}); err != nil {
		b.Fatalf("prepare: %v", err)
	}
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		failed  error
	)
	b.ReportAllocs()
	b.SetBytes(100)
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			entry := make([][]byte, 1)
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				off := int(i*131+int64(w)) % (len(pool) - 100)
				entry[0] = pool[off : off+100]
				if _, err := s.Append(ctx, id, entry); err != nil {
					errOnce.Do(func() { failed = err })
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if failed != nil {
		b.Fatalf("durable append: %v", failed)
	}
	reportEntries(b, int64(b.N))
}
