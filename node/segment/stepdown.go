package segment

import (
	"context"
	"time"
)

// stepDownRetry is how often a node that gave up a segment reminds the
// Raft leader until the segment has moved.
const stepDownRetry = time.Second

// stepDown gives up leading seg: appends to it are already refused, and
// the Raft leader is asked (again every second, until the segment's route
// no longer names this node) to recover the segment from its replicas and
// open the next one elsewhere. Used when this node holds fewer entries than
// a replica (it lost data: a wiped disk, a crash without fsync) and when a
// recovery fenced it but did not move the segment.
func (m *Manager) stepDown(topic string, seg uint64) {
	k := segKey{Topic: topic, Segment: seg}
	m.stepMu.Lock()
	if m.stepping[k] {
		m.stepMu.Unlock()
		return
	}
	if m.stopped.Load() {
		m.stepMu.Unlock()
		return
	}
	m.stepping[k] = true
	m.stepWG.Add(1)
	m.stepMu.Unlock()
	m.Logger.Warn("stepping down as segment leader: the Raft leader will recover the segment from its replicas", "topic", topic, "segment", seg)
	go func() {
		defer m.stepWG.Done()
		defer func() {
			m.stepMu.Lock()
			delete(m.stepping, k)
			m.stepMu.Unlock()
		}()
		for {
			if r, ok := m.FSM.Route(topic); !ok || r.Segment != seg || r.Leader != m.cfg.Self {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), stepDownRetry)
			err := m.StepDown(ctx, topic, seg)
			cancel()
			if err != nil {
				m.Logger.Warn("step down: asking the raft leader failed; will retry", "topic", topic, "segment", seg, "err", err)
			}
			t := time.NewTimer(stepDownRetry)
			select {
			case <-m.stop:
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
}
