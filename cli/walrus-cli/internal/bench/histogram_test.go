package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantilesMatchSortedSample(t *testing.T) {
	h := NewHistogram()
	r := rand.New(rand.NewPCG(1, 2))
	var sample []time.Duration
	for range 100_000 {
		// log-uniform between 1µs and 1s
		d := time.Duration(1000*(1<<r.IntN(20))) + time.Duration(r.IntN(1000))
		sample = append(sample, d)
		h.Record(d)
	}
	slices.Sort(sample)
	for _, q := range []float64{0.5, 0.95, 0.99, 0.999} {
		exact := sample[int(q*float64(len(sample)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got) > float64(exact)*1.04 {
			t.Errorf("q%.3f: got %v, exact %v (want within +4%%)", q, got, exact)
		}
	}
	if h.Max() != sample[len(sample)-1] {
		t.Errorf("max %v, want %v", h.Max(), sample[len(sample)-1])
	}
	if h.Count() != uint64(len(sample)) {
		t.Errorf("count %d", h.Count())
	}
}

func TestHistogramMergeAndEdges(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	if a.Quantile(0.99) != 0 || a.Mean() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	a.Record(-time.Second) // clamped to 0
	a.Record(10 * time.Microsecond)
	b.Record(5 * time.Hour) // beyond the last bucket: still counted, max exact
	a.Merge(b)
	if a.Count() != 3 || a.Max() != 5*time.Hour {
		t.Fatalf("count %d max %v", a.Count(), a.Max())
	}
	if a.Quantile(1) != 5*time.Hour {
		t.Fatalf("p100 %v", a.Quantile(1))
	}
	if a.Quantile(0.5) < 10*time.Microsecond || a.Quantile(0.5) > 11*time.Microsecond {
		t.Fatalf("p50 %v", a.Quantile(0.5))
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram()
	d := time.Duration(0)
	for b.Loop() {
		d += 977
		h.Record(d & (1<<30 - 1))
	}
}
