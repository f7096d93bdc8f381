package cursor

import (
	"context"
	"sync"
	"time"
)

// Bounds of the answers kept for retried GETs.
const (
	dedupMaxAnswers = 4096
	dedupMaxBytes   = 64 << 20
	dedupKeep       = time.Minute
)

type reqKey struct{ from, id uint64 }

// answer is one GET's result; done is closed once it is known.
type answer struct {
	entries [][]byte
	more    bool
	err     error
	bytes   int
	at      time.Time
	done    chan struct{}
}

// answers remembers what recent GETs handed out, so a requester that
// retries a GET whose reply it never saw (a timeout, a broken connection)
// gets the same entries again instead of the cursor advancing twice and
// the first entries being lost. Bounded by count, bytes and age.
type answers struct {
	mu    sync.Mutex
	m     map[reqKey]*answer
	order []reqKey // oldest first
	bytes int
}

// do returns the answer of key, computing it with f the first time; a
// concurrent retry waits for the first attempt.
func (a *answers) do(ctx context.Context, key reqKey, f func() ([][]byte, bool, error)) ([][]byte, bool, error) {
	a.mu.Lock()
	if a.m == nil {
		a.m = map[reqKey]*answer{}
	}
	if prev, ok := a.m[key]; ok {
		a.mu.Unlock()
		select {
		case <-prev.done:
			return prev.entries, prev.more, prev.err
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	cur := &answer{done: make(chan struct{}), at: time.Now()}
	a.m[key] = cur
	a.order = append(a.order, key)
	a.mu.Unlock()

	cur.entries, cur.more, cur.err = f()
	cur.bytes = totalBytes(cur.entries)
	close(cur.done)

	a.mu.Lock()
	defer a.mu.Unlock()
	if cur.err != nil && len(cur.entries) == 0 {
		// Nothing was handed out: a retry may compute afresh.
		delete(a.m, key)
	} else {
		a.bytes += cur.bytes
	}
	a.pruneLocked(time.Now())
	return cur.entries, cur.more, cur.err
}

func (a *answers) pruneLocked(now time.Time) {
	k := 0
	for k < len(a.order) {
		key := a.order[k]
		if ans, ok := a.m[key]; ok {
			if !isDone(ans) {
				break // in flight: keep it and everything after
			}
			over := len(a.order)-k > dedupMaxAnswers || a.bytes > dedupMaxBytes
			if !over && now.Sub(ans.at) < dedupKeep {
				break
			}
			delete(a.m, key)
			a.bytes -= ans.bytes
		}
		k++
	}
	if k > 0 {
		clear(a.order[:k])
		a.order = a.order[k:]
	}
}

func isDone(a *answer) bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}
