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

// BenchmarkAppend compares appends to the mmap backend in process with the
// same backend served as a plugin (plugins/mmapplugin), durability none in
// both, so the difference is the plugin boundary: gRPC over a Unix socket,
// one round trip per Append.
//
//	go test -run '^$' -bench Append -benchtime 2s ./plugins/pluginhost
func BenchmarkAppend(b *testing.B) {
	shapes := []struct {
		name   string
		batch  int
		entryB int
	}{
		{"batch128x100B", 128, 100},
		{"single100B", 1, 100},
	}
	for _, where := range []string{"inprocess", "plugin"} {
		for _, shape := range shapes {
			b.Run(fmt.Sprintf("%s/%s", shape.name, where), func(b *testing.B) {
				store := openBenchStore(b, where)
				entries := make([][]byte, shape.batch)
				for i := range entries {
					entries[i] = make([]byte, shape.entryB)
				}
				ctx := context.Background()
				b.SetBytes(int64(shape.batch * shape.entryB))
				b.ReportAllocs()
				seg := uint64(0)
				n := 0
				start := time.Now()
				for b.Loop() {
					// Roll to a new segment now and then so files stay small.
					if n%4096 == 0 {
						seg++
					}
					n++
					if _, err := store.Append(ctx, engine.SegmentID{Topic: "bench", Segment: seg}, entries); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*shape.batch)/time.Since(start).Seconds(), "entries/s")
			})
		}
	}
}

// BenchmarkAppendParallel is BenchmarkAppend with 16 concurrent appenders,
// each on its own segment: the way a node with many active topics drives
// its store. The plugin overlaps round trips on one gRPC connection.
//
//	go test -run '^$' -bench AppendParallel -benchtime 2s ./plugins/pluginhost
func BenchmarkAppendParallel(b *testing.B) {
	for _, where := range []string{"inprocess", "plugin"} {
		for _, batch := range []int{128, 1} {
			b.Run(fmt.Sprintf("batch%dx100B/%s", batch, where), func(b *testing.B) {
				store := openBenchStore(b, where)
				b.SetBytes(int64(batch * 100))
				b.ReportAllocs()
				b.SetParallelism(8) // 8 x GOMAXPROCS appenders
				var next atomic.Uint64
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					entries := make([][]byte, batch)
					for i := range entries {
						entries[i] = make([]byte, 100)
					}
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
				b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "entries/s")
			})
		}
	}
}

func openBenchStore(b *testing.B, where string) engine.SegmentStore {
	dir := b.TempDir()
	opts := mmapstore.DefaultOptions()
	opts.SegmentFileBytes = 8 << 20
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
	return openTest(b, Config{Path: path, Args: []string{"-dir", dir, "-durability", "none", "-segment-file-bytes", fmt.Sprint(opts.SegmentFileBytes)}})
}
