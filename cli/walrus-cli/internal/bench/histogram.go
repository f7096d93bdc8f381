package bench

import (
	"math/bits"
	"time"
)

// subBucketBits sets the histogram precision: each power of two is split into
// 2^subBucketBits linear buckets, so a recorded value is off by at most
// 1/2^subBucketBits (about 1.6%) — plenty for p50/p99, and it keeps Record to a
// few instructions with no allocation, which matters at ~1M records/s.
const (
	subBucketBits  = 6
	subBucketCount = 1 << subBucketBits
	// maxExponent covers values up to 2^(maxExponent+subBucketBits) ns (> 1 hour).
	maxExponent  = 36
	bucketsTotal = (maxExponent + 2) * subBucketCount
)

// Histogram is an HDR-like log-linear latency histogram. It is not safe for
// concurrent use: each worker records into its own and the owner Merges them.
type Histogram struct {
	counts [bucketsTotal]uint64
	total  uint64
	sum    uint64
	max    uint64
	min    uint64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram { return &Histogram{} }

func bucketIndex(v uint64) int {
	if v < subBucketCount {
		return int(v)
	}
	exp := bits.Len64(v) - subBucketBits - 1 // v>>exp is in [64,128)
	if exp > maxExponent {
		return bucketsTotal - 1
	}
	return (exp+1)*subBucketCount + int(v>>uint(exp)) - subBucketCount
}

// bucketUpper is the largest value that lands in bucket i, the conservative
// value to report for a quantile.
func bucketUpper(i int) uint64 {
	if i < subBucketCount {
		return uint64(i)
	}
	exp := i/subBucketCount - 1
	sub := uint64(i%subBucketCount + subBucketCount)
	return (sub+1)<<uint(exp) - 1
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketIndex(v)]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	h.total++
	h.sum += v
	if v > h.max {
		h.max = v
	}
}

// Merge adds every observation of o into h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	h.total += o.total
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the exact largest observation.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the exact mean of the observations.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / h.total)
}

// Quantile returns the value at or below which a fraction q (0..1) of the
// observations fall, rounded up to its bucket's upper bound and capped at Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min)
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(q*float64(h.total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := bucketUpper(i)
			if v > h.max {
				v = h.max
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
