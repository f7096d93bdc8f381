package segment

// Forget drops what this node keeps about segments that gone reports
// deleted (retention or a deleted topic): replicators, refusal marks, and
// the durable epochs and fences.
func (m *Manager) Forget(gone func(topic string, seg uint64) bool) error {
	isGone := func(k segKey) bool { return gone(k.Topic, k.Segment) }
	m.repMu.Lock()
	for k := range m.unreplicated {
		if isGone(k) {
			delete(m.unreplicated, k)
		}
	}
	for k := range m.retiredLAC {
		if isGone(k) {
			delete(m.retiredLAC, k)
		}
	}
	for k, r := range m.reps {
		if isGone(k) {
			delete(m.reps, k)
			r.Fail(false)
		}
	}
	m.repMu.Unlock()
	if err := m.epochs.Prune(isGone); err != nil {
		return err
	}
	return m.fences.Prune(isGone)
}
