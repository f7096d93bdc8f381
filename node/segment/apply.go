package segment

// ReplicaAppendAsync queues a streamed batch for its segment's apply queue;
// cb gets the count afterwards. Batches of one segment are applied in the
// order they were queued.
func (m *Manager) ReplicaAppendAsync(topic string, seg, epoch, first uint64, entries [][]byte, cb func(uint64, error)) {
	m.applyQ.Enqueue(topic, seg, epoch, first, entries, cb)
}
