package mmapstore

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
)

var flagHeap = flag.Bool("mmapstore.heap", false, "run TestHeapBound: write 10M entries over 10 segments and check the Go heap stays under 64 MiB")

// TestHeapBound writes 10 M 100-byte entries round-robin into 10 open
// segments (the worst case: every index in memory at once), then seals them
// and reads everything back, sampling the live Go heap. Page cache and the
// mappings are outside the Go heap by design. Run with:
//
//	go test ./backends/mmapstore -run TestHeapBound -mmapstore.heap -v
func TestHeapBound(t *testing.T) {
	if !*flagHeap {
		t.Skip("needs -mmapstore.heap (writes ~1.1 GB)")
	}
	const (
		segs     = 10
		perSeg   = 1_000_000
		batch    = 128
		heapMax  = 64 << 20
		sampleAt = 50_000
	)
	s, err := Open(t.TempDir(), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	measure := func() {
		metrics.Read(sample)
		peak = max(peak, sample[0].Value.Uint64())
	}
	pool := benchPool()
	entries := make([][]byte, batch)
	next := make([]int64, segs)
	start := time.Now()
	written := 0
	for written < segs*perSeg {
		for seg := range segs {
			n := min(batch, perSeg-int(next[seg]))
			if n <= 0 {
				continue
			}
			fillBatch(entries[:n], pool, 100, next[seg])
			id := engine.SegmentID{Topic: "heap", Segment: uint64(seg)}
			if _, err := s.Append(t.Context(), id, entries[:n]); err != nil {
				t.Fatal(err)
			}
			next[seg] += int64(n)
			written += n
			if written%sampleAt < n {
				measure()
			}
		}
	}
	writeTime := time.Since(start)
	measure()
	for seg := range segs {
		if _, err := s.Seal(t.Context(), engine.SegmentID{Topic: "heap", Segment: uint64(seg)}); err != nil {
			t.Fatal(err)
		}
		measure()
	}
	runtime.GC()
	metrics.Read(sample)
	afterSeal := sample[0].Value.Uint64()
	var read int
	for seg := range segs {
		id := engine.SegmentID{Topic: "heap", Segment: uint64(seg)}
		for off := uint64(0); off < perSeg; {
			got, err := s.Read(t.Context(), id, off, 10_000, 4<<20)
			if err != nil {
				t.Fatal(err)
			}
			off += uint64(len(got))
			read += len(got)
			if read%sampleAt < len(got) {
				measure()
			}
		}
	}
	t.Logf("wrote %d entries over %d open segments in %v (%.2f M entries/s); peak live heap %.1f MiB, %.1f MiB after sealing; %s",
		written, segs, writeTime.Round(time.Millisecond), float64(written)/writeTime.Seconds()/1e6,
		float64(peak)/(1<<20), float64(afterSeal)/(1<<20), procMemory())
	if peak > heapMax {
		t.Fatalf("peak live heap %d bytes, over %d", peak, heapMax)
	}
}

// procMemory reports the peak and current resident set from /proc.
func procMemory() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "no /proc/self/status"
	}
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		for _, k := range []string{"VmHWM:", "VmRSS:", "RssAnon:", "RssFile:"} {
			if strings.HasPrefix(line, k) {
				out = append(out, strings.Join(strings.Fields(line), " "))
			}
		}
	}
	return fmt.Sprint(strings.Join(out, ", "))
}
