package mmapstore

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// syncer is the Store's one fsync goroutine. Writers mark segments dirty;
// a round takes the dirty set and fsyncs each segment (in parallel across
// files), then completes every waiter that registered before the round
// began. In always mode Append waits for such a round, so concurrent
// writers, on one segment or many, share one round of fsyncs (group
// commit): while a round runs, the next one collects its waiters. In
// interval mode a ticker starts rounds; Store.Sync requests one in any mode.
type syncer struct {
	log      *slog.Logger
	interval time.Duration // > 0: also run a round every interval

	mu      sync.Mutex
	dirty   []*segment
	spare   []*segment
	pending *syncRound
	stopped bool

	rounds atomic.Uint64 // completed rounds that synced at least one segment

	// Linger state (syncer goroutine only, except via mu): how many writers
	// the last round served and how long its fsyncs took.
	lastWaiters int
	lastSync    time.Duration

	kick chan struct{} // capacity 1: a round is wanted
	stop chan struct{}
	done chan struct{}
}

// syncRound is completed (done closed) after its fsyncs; err joins the
// errors of the segments it synced (each waiter also checks its own
// segment, so one failing file does not fail writers of another).
type syncRound struct {
	done chan struct{}
	err  error
	// waiters registered so far; want > 0 while the syncer lingers for
	// that many, and full is signalled when they are all there.
	waiters, want int
	full          chan struct{}
}

// maxParallelSyncs bounds the goroutines one round uses to fsync files.
const maxParallelSyncs = 16

func newSyncer(log *slog.Logger, interval time.Duration) *syncer {
	sy := &syncer{log: log, interval: interval, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go sy.run()
	return sy
}

// markDirty records that sg has unsynced writes. Cheap when already dirty:
// the hot path of Append calls it on every batch.
func (sy *syncer) markDirty(sg *segment) {
	// Load first: a CAS is a locked instruction even when it fails, and
	// in none mode a segment stays dirty from its first append on.
	if !sg.dirty.Load() && sg.dirty.CompareAndSwap(false, true) {
		sy.mu.Lock()
		sy.dirty = append(sy.dirty, sg)
		sy.mu.Unlock()
	}
}

// request returns a round that starts after this call, waking the syncer.
// After stop it returns an already completed round: every segment was
// synced by its own clean close by then.
func (sy *syncer) request() *syncRound {
	sy.mu.Lock()
	if sy.stopped {
		sy.mu.Unlock()
		r := &syncRound{done: make(chan struct{})}
		close(r.done)
		return r
	}
	if sy.pending == nil {
		sy.pending = &syncRound{done: make(chan struct{}), full: make(chan struct{}, 1)}
	}
	r := sy.pending
	r.waiters++
	if r.waiters == r.want {
		r.full <- struct{}{}
	}
	sy.mu.Unlock()
	select {
	case sy.kick <- struct{}{}:
	default:
	}
	return r
}

func (sy *syncer) run() {
	defer close(sy.done)
	var tick <-chan time.Time
	if sy.interval > 0 {
		t := time.NewTicker(sy.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-sy.stop:
			sy.round()
			return
		case <-sy.kick:
			sy.round()
		case <-tick:
			sy.round()
		}
	}
}

// maxLinger caps how long a round waits for more writers.
const maxLinger = 200 * time.Microsecond

// round runs one group commit.
//
// Closed-loop writers tend to split into alternating rounds: the first
// writer woken by a finished round starts the next one alone, and the rest
// arrive a moment later and wait a whole extra fsync. So when the last
// round served several writers and fewer are waiting now, the round
// lingers until as many have arrived, for at most half the last fsync time
// (and maxLinger). A lone writer never waits.
func (sy *syncer) round() {
	sy.mu.Lock()
	r := sy.pending
	linger := time.Duration(0)
	if r != nil && sy.lastWaiters > 1 && r.waiters < sy.lastWaiters {
		r.want = sy.lastWaiters
		linger = min(maxLinger, sy.lastSync/2)
	}
	sy.mu.Unlock()
	if linger > 0 {
		t := time.NewTimer(linger)
		select {
		case <-r.full:
		case <-t.C:
		}
		t.Stop()
	}
	sy.mu.Lock()
	r = sy.pending
	sy.pending = nil
	segs := sy.dirty
	sy.dirty, sy.spare = sy.spare[:0], nil
	sy.mu.Unlock()

	if r != nil {
		sy.lastWaiters = r.waiters
	}
	syncStart := time.Now()
	errs := make([]error, len(segs))
	if len(segs) == 1 {
		errs[0] = segs[0].syncOnce()
	} else if len(segs) > 1 {
		var wg sync.WaitGroup
		next := make(chan int, len(segs))
		for i := range segs {
			next <- i
		}
		close(next)
		for range min(len(segs), maxParallelSyncs) {
			wg.Go(func() {
				for i := range next {
					errs[i] = segs[i].syncOnce()
				}
			})
		}
		wg.Wait()
	}
	if len(segs) > 0 {
		sy.rounds.Add(1)
		sy.lastSync = time.Since(syncStart)
	}
	err := errors.Join(errs...)
	if err != nil {
		sy.log.Error("sync round failed", "segments", len(segs), "err", err)
	}
	clear(segs)
	sy.mu.Lock()
	sy.spare = segs[:0]
	sy.mu.Unlock()
	if r != nil {
		r.err = err
		close(r.done)
	}
}

// close runs a last round for anything still pending and stops the
// goroutine. If abandon is set (crash simulation) the last round is skipped.
func (sy *syncer) close(abandon bool) {
	sy.mu.Lock()
	if sy.stopped {
		sy.mu.Unlock()
		return
	}
	sy.stopped = true
	if abandon {
		sy.dirty = nil
	}
	sy.mu.Unlock()
	close(sy.stop)
	<-sy.done
}
