package metadata

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// BenchmarkSnapshot measures a metadata snapshot of N topics (each created
// with three replicas, as REGISTER does on the 3-node cluster): its size,
// the time to take and persist it, and the time to restore it (issue 17:
// both in proportion to the size).
//
//	go test -run XXX -bench Snapshot -benchtime 5x ./node/metadata/
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		f := NewFSM()
		for i := 0; i < n; i += 1000 {
			batch := CreateTopics{}
			for j := i; j < min(i+1000, n); j++ {
				batch.Topics = append(batch.Topics, CreateTopic{Topic: fmt.Sprintf("t-%d", j), Leader: uint64(1 + j%3), Replicas: []uint64{uint64(1 + j%3), uint64(1 + (j+1)%3), uint64(1 + (j+2)%3)}, Timed: true})
			}
			data, err := Encode(batch)
			if err != nil {
				b.Fatal(err)
			}
			if r, ok := f.Apply(&raft.Log{Type: raft.LogCommand, Data: data}).(Result); !ok || r.Err != nil {
				b.Fatalf("apply: %+v", r)
			}
		}
		var sink memSink
		b.Run(fmt.Sprintf("persist/topics=%d", n), func(b *testing.B) {
			for range b.N {
				sink.Reset()
				snap, err := f.Snapshot()
				if err != nil {
					b.Fatal(err)
				}
				if err := snap.Persist(&sink); err != nil {
					b.Fatal(err)
				}
				snap.Release()
			}
			b.ReportMetric(float64(sink.Len()), "bytes")
			b.ReportMetric(float64(sink.Len())/float64(n), "bytes/topic")
		})
		b.Run(fmt.Sprintf("restore/topics=%d", n), func(b *testing.B) {
			for range b.N {
				g := NewFSM()
				if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
