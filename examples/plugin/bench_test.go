package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/examples/plugin/boltstore"
	"github.com/walrus-go/walrus/plugins/pluginhost"
)

// BenchmarkAppend compares this plugin's store in process with the same
// store served out of process through pluginhost, same durability mode,
// 100-byte entries:
//
//	go test -short -run '^$' -bench Append -benchtime 1s ./examples/plugin
func BenchmarkAppend(b *testing.B) {
	for _, sync := range []engine.Durability{engine.DurabilityNone, engine.DurabilityAlways} {
		for _, batch := range []int{128, 1} {
			for _, where := range []string{"inprocess", "plugin"} {
				b.Run(fmt.Sprintf("sync=%s/batch%dx100B/%s", sync, batch, where), func(b *testing.B) {
					var store engine.SegmentStore
					dir := b.TempDir()
					if where == "inprocess" {
						opts := boltstore.DefaultOptions()
						opts.Store.Durability = sync
						s, err := boltstore.Open(dir, opts)
						if err != nil {
							b.Fatal(err)
						}
						store = s
					} else {
						s, err := openPlugin(context.Background(), plugins[0].path, dir, pluginhost.Config{}, "-durability", string(sync))
						if err != nil {
							b.Fatal(err)
						}
						store = s
					}
					defer store.Close()
					entries := make([][]byte, batch)
					for i := range entries {
						entries[i] = make([]byte, 100)
					}
					b.SetBytes(int64(batch * 100))
					b.ReportAllocs()
					n, seg := 0, uint64(0)
					start := time.Now()
					for b.Loop() {
						if n%4096 == 0 {
							seg++
						}
						n++
						if _, err := store.Append(context.Background(), engine.SegmentID{Topic: "bench", Segment: seg}, entries); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(n*batch)/time.Since(start).Seconds(), "entries/s")
				})
			}
		}
	}
}
