package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/walrus-go/walrus/node/wire"
)

// fullBeatEvery is how often a peer gets the full list of the open
// segments this node leads; in between, heartbeats carry only the
// segments whose count changed, so an idle topic costs no heartbeat
// bytes. A peer that missed a heartbeat gets a full one next.
const fullBeatEvery = 30 * time.Second

// segCount is one reported open segment.
type segCount struct{ seg, count uint64 }

// newer is what a report of seg/count makes of what was known: the later
// segment wins, and within one segment the larger count (heartbeats sent
// concurrently may arrive out of order; counts only grow).
func (k segCount) newer(seg, count uint64) segCount {
	switch {
	case seg > k.seg:
		return segCount{seg, count}
	case seg == k.seg:
		return segCount{seg, max(k.count, count)}
	}
	return k
}

// beatState is the sending side: when each peer last took a full
// heartbeat, and which peers missed one since.
type beatState struct {
	mu       sync.Mutex
	lastFull map[uint64]time.Time // zero (absent): needs a full one
}

// Record stores a heartbeat.
func (c *Cluster) Record(hb *wire.Heartbeat) {
	p := Progress{LastIndex: hb.LastIndex, Applied: hb.Applied, Seen: time.Now(), RaftAddr: hb.RaftAddr, DiskFull: hb.DiskFull}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peers[hb.ID] = p
	cur := c.open[hb.ID]
	if !hb.Delta || cur == nil {
		next := make(map[string]segCount, len(hb.Open))
		for _, o := range hb.Open {
			next[o.Topic] = cur[o.Topic].newer(o.Segment, o.Count)
		}
		c.open[hb.ID] = next
		return
	}
	for _, o := range hb.Open {
		cur[o.Topic] = cur[o.Topic].newer(o.Segment, o.Count)
	}
}

// ReportedCount is the entry count node id last reported for a segment it
// leads (0 when unknown).
func (c *Cluster) ReportedCount(id uint64, topic string, seg uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k := c.open[id][topic]; k.seg == seg {
		return k.count
	}
	return 0
}

// TopicsAtLeast lists the topics whose open segment a peer reported, in
// its latest heartbeats, to hold at least min entries.
func (c *Cluster) TopicsAtLeast(min uint64) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, open := range c.open {
		for topic, k := range open {
			if k.count >= min {
				out = append(out, topic)
			}
		}
	}
	return out
}

// contactBeat is the heartbeat a contact proof carries: progress only (a
// delta with no counts), unless the disk is full, which only a full
// heartbeat may say.
func (c *Cluster) contactBeat(ctx context.Context) *wire.Heartbeat {
	r := c.Cons.Raft()
	hb := &wire.Heartbeat{ID: c.cfg.Self.ID, LastIndex: r.LastIndex(), Applied: r.AppliedIndex(), RaftAddr: c.cfg.Self.RaftAddr, Delta: true}
	if c.SelfDiskFull != nil && c.SelfDiskFull() {
		hb.DiskFull, hb.Delta, hb.Open = true, false, c.Led.OpenCounts(ctx)
	}
	return hb
}

// Beat reports this node's Raft progress and the entry counts of the open
// segments it leads to every other member: the counts that changed since
// the last beat, or all of them to a peer due a full heartbeat.
func (c *Cluster) Beat(ctx context.Context) {
	m, err := c.Cons.Membership()
	if err != nil {
		return
	}
	r := c.Cons.Raft()
	diskFull := c.SelfDiskFull != nil && c.SelfDiskFull()
	base := wire.Heartbeat{ID: c.cfg.Self.ID, LastIndex: r.LastIndex(), Applied: r.AppliedIndex(), RaftAddr: c.cfg.Self.RaftAddr, DiskFull: diskFull}
	delta := base
	delta.Open, delta.Delta = c.Led.ChangedCounts(ctx), true
	deltaPayload := delta.Append(nil)
	var fullPayload []byte // made once, if some peer is due one

	now := time.Now()
	type target struct {
		addr string
		peer uint64
		full bool
	}
	var targets []target
	c.beat.mu.Lock()
	for id, addr := range m.Addrs {
		if id == c.cfg.Self.ID {
			continue
		}
		last, ok := c.beat.lastFull[id]
		// A delta never says disk full (see wire.Heartbeat).
		full := !ok || now.Sub(last) >= fullBeatEvery || diskFull
		if full {
			delete(c.beat.lastFull, id) // until this one is taken
		}
		targets = append(targets, target{addr: addr, peer: id, full: full})
	}
	c.beat.mu.Unlock()
	for _, t := range targets {
		if t.full && fullPayload == nil {
			hb := base
			hb.Open = c.Led.OpenCounts(ctx)
			fullPayload = hb.Append(nil)
		}
	}

	hctx, cancel := context.WithTimeout(ctx, HeartbeatInterval*4)
	defer cancel()
	var wg sync.WaitGroup
	for _, t := range targets {
		payload := deltaPayload
		if t.full {
			payload = fullPayload
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(hctx, RPCTimeout)
			defer cancel()
			_, err := c.Caller.Call(cctx, t.addr, wire.MethodHeartbeat, payload)
			c.beat.mu.Lock()
			defer c.beat.mu.Unlock()
			switch {
			case err != nil:
				delete(c.beat.lastFull, t.peer) // it missed this delta
			case t.full:
				c.beat.lastFull[t.peer] = now
			}
		})
	}
	wg.Wait()
}
