package segment

import (
	"context"
	"time"

	"github.com/walrus-go/walrus/node/metadata"
)

// leaseOf is the lease table's entry for topic (no sync).
func (m *Manager) leaseOf(topic string) (uint64, bool) {
	m.leaseMu.RLock()
	defer m.leaseMu.RUnlock()
	seg, ok := m.leases[topic]
	return seg, ok
}

// leaseFor returns the open segment of topic this node leads.
func (m *Manager) leaseFor(topic string) (uint64, bool) {
	if seg, ok := m.leaseOf(topic); ok {
		return seg, true
	}
	// Not in the table: the metadata may have handed us the segment since
	// the last sync. Sync now rather than bounce the write.
	if r, found := m.FSM.Route(topic); found && r.Leader == m.cfg.Self {
		m.syncLeases()
		return m.leaseOf(topic)
	}
	return 0, false
}

// leaseFresh reports whether this node may use its leases now (package
// contact).
func (m *Manager) leaseFresh() bool { return m.lease.Fresh() }

// syncLeases brings the lease table up to the committed metadata: the
// topics whose routes changed since the last sync (the metadata's change
// log), or every topic on the first sync and when the log no longer
// covers the gap. A sync with no change costs nothing. Leases lost to a
// rollover are sealed in the store (the count is final); after a
// failover, recovery decides the count instead.
func (m *Manager) syncLeases() {
	m.leaseSync.Lock()
	defer m.leaseSync.Unlock()
	changed, full := m.leaseFollow.Next(m.FSM, metadata.ChangeRoute)
	if !full {
		for _, topic := range changed {
			r, found := m.FSM.Route(topic)
			m.setLease(topic, r.Segment, found && r.Leader == m.cfg.Self)
		}
	} else {
		next := make(map[string]uint64)
		for _, topic := range changed {
			if r, found := m.FSM.Route(topic); found && r.Leader == m.cfg.Self {
				next[topic] = r.Segment
			}
		}
		m.leaseMu.RLock()
		var gone []string
		for topic := range m.leases {
			if _, ok := next[topic]; !ok {
				gone = append(gone, topic)
			}
		}
		m.leaseMu.RUnlock()
		for _, topic := range gone {
			m.setLease(topic, 0, false)
		}
		for topic, seg := range next {
			m.setLease(topic, seg, true)
		}
		m.repMu.Lock()
		for k := range m.unreplicated {
			if seg, ok := next[k.Topic]; !ok || seg != k.Segment {
				delete(m.unreplicated, k)
			}
		}
		for k := range m.retiredLAC {
			if seg, ok := next[k.Topic]; !ok || seg != k.Segment {
				delete(m.retiredLAC, k)
			}
		}
		m.repMu.Unlock()
	}
	m.leaseMu.RLock()
	m.Metrics.LeasesHeld.Set(float64(len(m.leases)))
	m.leaseMu.RUnlock()
}

// setLease records whether this node leads topic's open segment seg
// (leaseSync held), sealing a segment lost to a rollover and dropping the
// unreplicated mark of a lost lease (those only matter for segments led
// here).
func (m *Manager) setLease(topic string, seg uint64, lead bool) {
	m.leaseMu.Lock()
	old, had := m.leases[topic]
	if lead {
		m.leases[topic] = seg
	} else {
		delete(m.leases, topic)
	}
	m.leaseMu.Unlock()
	if had && (!lead || old != seg) {
		m.Metrics.LeaseChanges.WithLabelValues("lost").Inc()
		if _, _, sealed, _ := m.FSM.SegmentInfo(topic, old); sealed {
			m.enqueueSeal(topic, old)
		}
		m.repMu.Lock()
		delete(m.unreplicated, segKey{Topic: topic, Segment: old})
		delete(m.retiredLAC, segKey{Topic: topic, Segment: old})
		m.repMu.Unlock()
	}
	if lead && (!had || old != seg) {
		m.Metrics.LeaseChanges.WithLabelValues("gained").Inc()
	}
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
