package bench

import (
	"context"
	"sync"
	"time"
)

// window is the bookkeeping of one pipelined connection: the writer (the
// goroutine that Sends) and the reader (the goroutine that Recvs) share it.
//
// The writer works in batches: reserve waits until at least lowWater slots
// of the pipeline depth are free, the writer Sends that many requests,
// Flushes once and publishes them. Batching is what makes the generator
// cheap: one write system call carries up to depth/2 requests, and the
// writer sleeps while the pipeline is more than half full instead of waking
// for every reply. A request is published only after the Flush, so the
// reader never waits for a reply to a request still sitting in a buffer
// (node/client refuses a Recv for a request it has not been given).
//
// Per-request data (the topic of a GET, the flush time) lives in rings of
// depth slots. The writer fills slot i%depth only while i-recvd < depth, that
// is after the reader is done with request i-depth; the mutex orders the two.
type window struct {
	depth    int
	lowWater int

	mu      sync.Mutex
	space   sync.Cond // writer waits here for free slots
	data    sync.Cond // reader waits here for published requests
	sent    uint64    // requests published
	recvd   uint64    // requests whose reply the reader has taken (next)
	stopped bool      // the writer publishes no more
	aborted bool      // stop everything: a failure or a cancelled run

	tags   []int32 // ring: topic index of each request (consume)
	sentAt []int64 // ring: ns since base when the request was flushed
	base   time.Time

	unhook func() bool
}

func newWindow(ctx context.Context, depth int) *window {
	w := &window{
		depth:    depth,
		lowWater: max(1, depth/2),
		tags:     make([]int32, depth),
		sentAt:   make([]int64, depth),
		base:     time.Now(),
	}
	w.space.L = &w.mu
	w.data.L = &w.mu
	w.unhook = context.AfterFunc(ctx, w.abort)
	return w
}

// reserve waits until at least want slots (capped at the depth) are free and
// returns how many are; ok is false when the window was aborted.
func (w *window) reserve(want int) (free int, ok bool) {
	want = min(max(want, 1), w.depth)
	w.mu.Lock()
	defer w.mu.Unlock()
	for !w.aborted && w.depth-int(w.sent-w.recvd) < want {
		w.space.Wait()
	}
	return w.depth - int(w.sent-w.recvd), !w.aborted
}

// setTag records the topic of the request that will be published at
// offset j of the next batch. Only the writer calls it, on reserved slots.
func (w *window) setTag(j int, tag int32) {
	w.mu.Lock()
	w.tags[(w.sent+uint64(j))%uint64(w.depth)] = tag
	w.mu.Unlock()
}

// publish hands n flushed requests to the reader.
func (w *window) publish(n int) {
	now := int64(time.Since(w.base))
	w.mu.Lock()
	for j := range uint64(n) {
		w.sentAt[(w.sent+j)%uint64(w.depth)] = now
	}
	w.sent += uint64(n)
	w.mu.Unlock()
	w.data.Signal()
}

// next waits for the next published request and returns its index and tag;
// ok is false when the writer has stopped and every reply was taken, or the
// window was aborted. The reader then Recvs the reply and calls take(i).
func (w *window) next() (i uint64, tag int32, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for !w.aborted && w.recvd == w.sent && !w.stopped {
		w.data.Wait()
	}
	if w.aborted || w.recvd == w.sent {
		return 0, 0, false
	}
	i = w.recvd
	return i, w.tags[i%uint64(w.depth)], true
}

// take finishes request i (whose reply the reader has): it frees the slot
// and returns the request's latency, measured from its flush.
func (w *window) take(i uint64) time.Duration {
	now := time.Since(w.base)
	w.mu.Lock()
	at := w.sentAt[i%uint64(w.depth)]
	w.recvd = i + 1
	free := w.depth - int(w.sent-w.recvd)
	w.mu.Unlock()
	if free == w.lowWater {
		// Wake the writer once per refill, not once per reply.
		w.space.Signal()
	}
	return now - time.Duration(at)
}

// stop says the writer publishes no more.
func (w *window) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.data.Broadcast()
	w.unhook()
}

// abort wakes and stops both sides.
func (w *window) abort() {
	w.mu.Lock()
	w.aborted = true
	w.mu.Unlock()
	w.space.Broadcast()
	w.data.Broadcast()
}
