package pluginhost

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrus-go/walrus/backends/mmapstore"
	"github.com/walrus-go/walrus/engine"
)

// mmapPlugin builds plugins/mmapplugin once, on first use, so the default
// test run does not pay for it.
var mmapPlugin = sync.OnceValues(func() (string, error) {
	out := filepath.Join(filepath.Dir(bin.testplugin), "mmapplugin")
	return out, goBuild(out, "github.com/walrus-go/walrus/plugins/mmapplugin")
})

var benchShapes = []struct {
	name   string
	batch  int
	entryB int
}{
	{"batch128x100B", 128, 100},
	{"single100B", 1, 100},
}

// BenchmarkAppend compares appends to the mmap backend in process with the
// same backend served as a plugin (plugins/mmapplugin), with the same
// durability mode in both, so the difference is the plugin boundary: one
// gRPC round trip over a Unix socket per Append. With durability none the
// boundary is all there is to see; with always, an fsync per append
// dominates both.
//
//	go test -run '^$' -bench 'Append$' -benchtime 2s ./plugins/pluginhost
func BenchmarkAppend(b *testing.B) {
	for _, sync := range []engine.Durability{engine.DurabilityNone, engine.DurabilityAlways} {
		for _, shape := range benchShapes {
			for _, where := range []string{"inprocess", "plugin"} {
				b.Run(fmt.Sprintf("sync=%s/%s/%s", sync, shape.name, where), func(b *testing.B) {
					store := openBenchStore(b, where, sync)
					entries := makeEntries(shape.batch, shape.entryB)
					b.SetBytes(int64(shape.batch * shape.entryB))
					b.ReportAllocs()
					seg, n := uint64(0), 0
					start := time.Now()
					for b.Loop() {
						// Roll to a new segment now and then so files stay small.
						if n%4096 == 0 {
							seg++
						}
						n++
						if _, err := store.Append(context.Background(), engine.SegmentID{Topic: "bench", Segment: seg}, entries); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(n*shape.batch)/time.Since(start).Seconds(), "entries/s")
				})
			}
		}
	}
}

// BenchmarkAppendParallel is BenchmarkAppend (durability none) with 16
// concurrent appenders, each on its own topic: the way a node with many
// active topics drives its store. The plugin overlaps round trips on one
// gRPC connection.
//
//	go test -run '^$' -bench AppendParallel -benchtime 2s ./plugins/pluginhost
func BenchmarkAppendParallel(b *testing.B) {
	for _, shape := range benchShapes {
		for _, where := range []string{"inprocess", "plugin"} {
			b.Run(fmt.Sprintf("sync=none/%s/%s", shape.name, where), func(b *testing.B) {
				store := openBenchStore(b, where, engine.DurabilityNone)
				b.SetBytes(int64(shape.batch * shape.entryB))
				b.ReportAllocs()
				b.SetParallelism(8) // 8 x GOMAXPROCS appenders
				var next atomic.Uint64
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					entries := makeEntries(shape.batch, shape.entryB)
					topic := fmt.Sprintf("bench%d", next.Add(1))
					seg, n := uint64(0), 0
					for pb.Next() {
						if n%4096 == 0 {
							seg++
						}
						n++
						if _, err := store.Append(context.Background(), engine.SegmentID{Topic: topic, Segment: seg}, entries); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N*shape.batch)/time.Since(start).Seconds(), "entries/s")
			})
		}
	}
}

func makeEntries(n, size int) [][]byte {
	entries := make([][]byte, n)
	for i := range entries {
		entries[i] = make([]byte, size)
		for j := range entries[i] {
			entries[i][j] = byte(i + j)
		}
	}
	return entries
}

func openBenchStore(b *testing.B, where string, sync engine.Durability) engine.SegmentStore {
	dir := b.TempDir()
	opts := mmapstore.DefaultOptions()
	opts.SegmentFileBytes = 8 << 20
	opts.Store.Durability = sync
	if where == "inprocess" {
		s, err := mmapstore.Open(dir, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return s
	}
	path, err := mmapPlugin()
	if err != nil {
		b.Fatal(err)
	}
	return openTest(b, Config{Path: path, Args: []string{
		"-dir", dir, "-durability", string(sync), "-segment-file-bytes", fmt.Sprint(opts.SegmentFileBytes),
	}})
}
