package meta

import (
	"hash/maphash"
	"sync"
)

// Locks are per-segment locks striped over a fixed array, so nothing
// grows with the number of segments. The zero value is ready to use.
type Locks struct {
	seed  maphash.Seed
	once  sync.Once
	locks [64]sync.Mutex
}

// For returns the lock of segment k.
func (l *Locks) For(k Key) *sync.Mutex {
	l.once.Do(func() { l.seed = maphash.MakeSeed() })
	var h maphash.Hash
	h.SetSeed(l.seed)
	_, _ = h.WriteString(k.Topic)
	var b [8]byte
	for i := range b {
		b[i] = byte(k.Segment >> (8 * i))
	}
	_, _ = h.Write(b[:])
	return &l.locks[h.Sum64()%uint64(len(l.locks))]
}
