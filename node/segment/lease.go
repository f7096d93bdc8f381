package segment

import (
	"context"
	"time"
)

// leaseFor returns the open segment of topic this node leads.
func (m *Manager) leaseFor(topic string) (uint64, bool) {
	m.leaseMu.RLock()
	seg, ok := m.leases[topic]
	m.leaseMu.RUnlock()
	if ok {
		return seg, true
	}
	// Not in the table: the metadata may have handed us the segment since
	// the last sync. Sync now rather than bounce the write.
	if r, found := m.FSM.Route(topic); found && r.Leader == m.cfg.Self {
		m.syncLeases()
		m.leaseMu.RLock()
		seg, ok = m.leases[topic]
		m.leaseMu.RUnlock()
	}
	return seg, ok
}

// leaseFresh reports whether this node may use its leases now.
func (m *Manager) leaseFresh() bool {
	return !m.draining.Load() && m.Contact.InContact()
}

// syncLeases recomputes the lease table from the committed metadata.
// Leases lost to a rollover are sealed in the store (the count is final);
// after a failover, recovery decides the count instead.
func (m *Manager) syncLeases() {
	m.leaseSync.Lock()
	defer m.leaseSync.Unlock()
	next := make(map[string]uint64)
	for topic, r := range m.FSM.Routes() {
		if r.Leader == m.cfg.Self {
			next[topic] = r.Segment
		}
	}
	m.leaseMu.Lock()
	prev := m.leases
	m.leases = next
	m.leaseMu.Unlock()

	for topic, seg := range prev {
		if cur, ok := next[topic]; ok && cur == seg {
			continue
		}
		m.Metrics.LeaseChanges.WithLabelValues("lost").Inc()
		if _, _, sealed, _ := m.FSM.SegmentInfo(topic, seg); sealed {
			m.enqueueSeal(topic, seg)
		}
	}
	for topic, seg := range next {
		if old, ok := prev[topic]; !ok || old != seg {
			m.Metrics.LeaseChanges.WithLabelValues("gained").Inc()
		}
	}
	m.Metrics.LeasesHeld.Set(float64(len(next)))
	// The unreplicated marks only matter for segments led here.
	m.repMu.Lock()
	for k := range m.unreplicated {
		if seg, ok := next[k.topic]; !ok || seg != k.seg {
			delete(m.unreplicated, k)
		}
	}
	m.repMu.Unlock()
}

func (m *Manager) leaseLoop(ctx context.Context) {
	t := time.NewTicker(m.cfg.LeaseSyncInterval)
	defer t.Stop()
	for {
		changed := m.FSM.Changed()
		m.syncLeases()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
		}
	}
}
