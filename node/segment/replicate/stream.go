package replicate

import (
	"context"
	"errors"
	"time"

	"github.com/walrus-go/walrus/node/wire"
)

// runFollower streams the segment to one follower.
func (r *Replicator) runFollower(f *follower) {
	ctx := r.ctx
	for {
		r.mu.Lock()
		for !r.stopped && !f.fenced && ((f.needProbe && f.inflight > 0) || (!f.needProbe && (f.sent >= r.local || f.inflight >= maxInflight))) {
			r.cond.Wait()
		}
		if r.stopped || f.fenced {
			r.mu.Unlock()
			return
		}
		if f.needProbe {
			failures := f.failures
			r.mu.Unlock()
			// A follower that keeps failing (a full disk, a crash loop)
			// is retried with a growing pause, not in a tight loop.
			if failures > 0 && !r.sleep(min(probeBackoff<<min(failures-1, 5), 2*time.Second)) {
				return
			}
			count, err := r.send(ctx, f.id, 0, nil)
			r.mu.Lock()
			switch {
			case err == nil && count > r.local:
				// The follower holds entries this leader lost (a crash
				// without fsync): continuing would fork the segment.
				// Acknowledging anything more would hide what the
				// replicas hold: stop, and let a recovery seal the segment
				// at the count they hold.
				r.cfg.Logger.Error("replica holds more entries than its segment leader; not streaming to it", "topic", r.cfg.ID.Topic, "segment", r.cfg.ID.Segment, "replica", f.id, "replica_entries", count, "leader_entries", r.local)
				lost := r.fencedByFollowerLocked(f)
				r.mu.Unlock()
				finish(lost, r.errUnacked())
				continue
			case err == nil:
				if !f.known {
					f.known = true
					r.probed++
					if r.probed >= r.cfg.AckQuorum-1 {
						r.markReadyLocked()
					}
				}
				f.sent, f.needProbe = count, false
				f.acked = max(f.acked, count)
				done := r.advanceLocked()
				r.changedLocked()
				r.mu.Unlock()
				finish(done, nil)
				continue
			case errors.Is(err, wire.ErrReplicaFenced):
				lost := r.fencedByFollowerLocked(f)
				r.mu.Unlock()
				finish(lost, r.errUnacked())
				continue
			}
			r.mu.Unlock()
			if err != nil && !r.sleep(probeBackoff) {
				return
			}
			continue
		}
		from, gen := f.sent, f.gen
		want := min(r.local-from, MaxEntries)
		f.inflight++
		if entries := r.recentLocked(from, int(want)); entries != nil {
			// Fast path: the batches are still in memory.
			f.sent = from + uint64(len(entries))
			r.trimRecentLocked()
			r.mu.Unlock()
			r.sendAsync(f, gen, from, entries)
			continue
		}
		r.mu.Unlock()
		entries, err := r.cfg.Store.Read(ctx, r.cfg.ID, from, int(want), MaxBytes)
		r.mu.Lock()
		if err != nil || len(entries) == 0 || f.gen != gen {
			f.inflight--
			if f.gen == gen {
				f.gen++
				f.needProbe = true
			}
			r.mu.Unlock()
			if err != nil {
				r.cfg.Logger.Error("replication: local read failed", "topic", r.cfg.ID.Topic, "segment", r.cfg.ID.Segment, "err", err)
				if !r.sleep(probeBackoff) {
					return
				}
			}
			continue
		}
		f.sent = from + uint64(len(entries))
		r.trimRecentLocked()
		r.mu.Unlock()
		r.sendAsync(f, gen, from, entries)
	}
}

// recentLocked returns up to max entries starting at offset from out of
// the in-memory batches (within MaxBytes), or nil when from is not
// covered by them.
func (r *Replicator) recentLocked(from uint64, max int) [][]byte {
	k := -1
	for i, b := range r.recent {
		if from >= b.first && from < b.first+uint64(len(b.entries)) {
			k = i
			break
		}
	}
	if k < 0 {
		return nil
	}
	var out [][]byte
	bytes := 0
	next := from
	for _, b := range r.recent[k:] {
		if b.first != next && len(out) > 0 {
			break
		}
		for _, e := range b.entries[next-b.first:] {
			if len(out) >= max || (len(out) > 0 && bytes+len(e) > MaxBytes) {
				return out
			}
			out = append(out, e)
			bytes += len(e)
		}
		next = b.first + uint64(len(b.entries))
	}
	return out
}

// trimRecentLocked drops in-memory batches every follower has been sent
// (a resend after a failure reads the store) and bounds the rest.
func (r *Replicator) trimRecentLocked() {
	// A follower that is being resynced reads from the store when it
	// returns: it does not hold batches in memory.
	low := r.local
	for _, f := range r.followers {
		if !f.fenced && !f.needProbe && f.sent < low {
			low = f.sent
		}
	}
	k := 0
	for k < len(r.recent) {
		b := r.recent[k]
		end := b.first + uint64(len(b.entries))
		if end > low && r.recentB <= recentMaxBytes && len(r.recent)-k <= recentMaxBatchs {
			break
		}
		r.recentB -= b.bytes
		r.cfg.Memory.give(b.bytes)
		k++
	}
	if k > 0 {
		clear(r.recent[:k])
		r.recent = r.recent[k:]
	}
}

func (r *Replicator) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.cfg.Stop:
		return false
	case <-r.ctx.Done():
		return false
	}
}

// fencedByFollowerLocked handles a follower that was fenced by a recovery:
// nothing pending can be confirmed any more.
func (r *Replicator) fencedByFollowerLocked(f *follower) []pendingAck {
	f.fenced = true
	if !r.fenced {
		r.fenced = true
		r.cfg.Logger.Warn("segment fenced by a recovery: no longer acknowledging appends", "topic", r.cfg.ID.Topic, "segment", r.cfg.ID.Segment, "replica", f.id)
		if r.cfg.Deposed != nil {
			go r.cfg.Deposed()
		}
	}
	done := r.pending
	r.pending = nil
	r.changedLocked()
	return done
}

// send is a blocking replica append (entries may be empty: a probe).
func (r *Replicator) send(ctx context.Context, id uint64, first uint64, entries [][]byte) (uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return r.followerPeer(id).ReplicaAppend(cctx, r.cfg.ID.Topic, r.cfg.ID.Segment, r.epoch, first, entries)
}

func (r *Replicator) sendAsync(f *follower, gen, first uint64, entries [][]byte) {
	// f.peer is set by the probe that precedes every stream, on this
	// follower's own goroutine.
	if f.peer == nil {
		r.followerPeer(f.id)
	}
	f.peer.ReplicaAppendAsync(r.cfg.ID.Topic, r.cfg.ID.Segment, r.epoch, first, entries, func(count uint64, err error) {
		r.mu.Lock()
		f.inflight--
		var done, lost []pendingAck
		switch {
		case err == nil:
			f.failures = 0
			if count > f.acked && count <= r.local {
				f.acked = count
			}
			done = r.advanceLocked()
		case errors.Is(err, wire.ErrReplicaFenced):
			lost = r.fencedByFollowerLocked(f)
		case f.gen == gen:
			f.gen++
			f.needProbe = true
			f.failures++
		}
		r.changedLocked()
		r.mu.Unlock()
		finish(done, nil)
		finish(lost, r.errUnacked())
	})
}

// followerPeer resolves follower id's stub (a probe does this each time).
func (r *Replicator) followerPeer(id uint64) Follower {
	p := r.cfg.Peer(id)
	r.mu.Lock()
	for _, f := range r.followers {
		if f.id == id {
			f.peer = p
		}
	}
	r.mu.Unlock()
	return p
}
