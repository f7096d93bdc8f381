package node

import (
	"context"
	"sync"
	"time"
)

const timeSecond = time.Second

// leaseTable is this node's view of the open segments it leads, refreshed
// from the committed metadata by the lease sync loop (and on demand when a
// write finds no lease, so a freshly handed-over segment is usable at once).
type leaseTable struct {
	mu sync.RWMutex
	m  map[string]uint64 // topic -> open segment led here
	// syncMu serialises syncs (loop and on-demand).
	syncMu sync.Mutex
}

func (t *leaseTable) init() { t.m = map[string]uint64{} }

// leaseFor returns the open segment of topic this node leads.
func (n *Node) leaseFor(topic string) (uint64, bool) {
	n.leases.mu.RLock()
	seg, ok := n.leases.m[topic]
	n.leases.mu.RUnlock()
	if ok {
		return seg, true
	}
	// Not in the table: the metadata may have handed us the segment since
	// the last sync. Sync now rather than bounce the write.
	if r, found := n.fsm.Route(topic); found && r.Leader == n.id {
		n.syncLeases(context.Background())
		n.leases.mu.RLock()
		seg, ok = n.leases.m[topic]
		n.leases.mu.RUnlock()
	}
	return seg, ok
}

// syncLeases recomputes the lease table from the committed metadata. Leases
// lost since the last sync are sealed in the store (the segment was rolled
// over, so its count is final). It returns the first error met.
func (n *Node) syncLeases(ctx context.Context) error {
	n.leases.syncMu.Lock()
	defer n.leases.syncMu.Unlock()
	routes := n.fsm.Routes()
	next := make(map[string]uint64)
	for topic, r := range routes {
		if r.Leader == n.id {
			next[topic] = r.Segment
		}
	}
	n.leases.mu.Lock()
	prev := n.leases.m
	n.leases.m = next
	n.leases.mu.Unlock()

	for topic, seg := range prev {
		if cur, ok := next[topic]; ok && cur == seg {
			continue
		}
		n.m.LeaseChanges.WithLabelValues("lost").Inc()
		// Seal only when the metadata says the segment is sealed (a rollover);
		// otherwise (a failover, issue 4) recovery decides the count.
		if _, _, sealed, _ := n.fsm.SegmentInfo(topic, seg); sealed {
			n.enqueueSeal(topic, seg)
		}
	}
	for topic, seg := range next {
		if old, ok := prev[topic]; !ok || old != seg {
			n.m.LeaseChanges.WithLabelValues("gained").Inc()
		}
	}
	n.m.LeasesHeld.Set(float64(len(next)))
	return nil
}

// leaseLoop syncs leases every LeaseSyncInterval and at every metadata
// change.
func (n *Node) leaseLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.LeaseSyncInterval)
	defer t.Stop()
	for {
		changed := n.fsm.Changed()
		if err := n.syncLeases(ctx); err != nil {
			n.logger.Error("Lease sync failed", "err", err)
			n.m.LeaseSyncFailures.Inc()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
		}
	}
}
