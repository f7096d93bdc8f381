package segment

import (
	"context"
	"time"

	"github.com/walrus-go/walrus/node/wire"
)

// Bounds of the replica apply queues.
const (
	applyQueueCap = 64              // batches waiting per segment
	applyIdle     = 5 * time.Second // a queue with no work for this long goes away
)

type applyOp struct {
	first, epoch uint64
	entries      [][]byte
	cb           func(uint64, error)
}

// applier applies one segment's streamed batches in arrival order on its
// own goroutine, so a slow disk holds up only that segment, not the
// connection that also carries heartbeats and other segments' batches.
type applier struct {
	ops     chan applyOp
	pending int // guarded by Manager.applyMu
}

// ReplicaAppendAsync queues a streamed batch for its segment's applier; cb
// gets the count afterwards. Batches of one segment are applied in the
// order they were queued.
func (m *Manager) ReplicaAppendAsync(topic string, seg, epoch, first uint64, entries [][]byte, cb func(uint64, error)) {
	k := segKey{Topic: topic, Segment: seg}
	m.applyMu.Lock()
	if m.stopped.Load() {
		m.applyMu.Unlock()
		cb(0, wire.ErrShuttingDown)
		return
	}
	a, ok := m.appliers[k]
	if !ok {
		a = &applier{ops: make(chan applyOp, applyQueueCap)}
		m.appliers[k] = a
		m.applyWG.Add(1)
		go func() {
			defer m.applyWG.Done()
			m.runApplier(k, a)
		}()
	}
	a.pending++
	m.applyMu.Unlock()
	select {
	case a.ops <- applyOp{first: first, epoch: epoch, entries: entries, cb: cb}:
	case <-m.stop:
		m.applyMu.Lock()
		a.pending--
		m.applyMu.Unlock()
		cb(0, wire.ErrShuttingDown)
	}
}

func (m *Manager) runApplier(k segKey, a *applier) {
	idle := time.NewTimer(applyIdle)
	defer idle.Stop()
	for {
		select {
		case op := <-a.ops:
			op.cb(m.ReplicaAppend(context.Background(), k.Topic, k.Segment, op.epoch, op.first, op.entries))
			m.applyMu.Lock()
			a.pending--
			m.applyMu.Unlock()
			idle.Reset(applyIdle)
		case <-idle.C:
			m.applyMu.Lock()
			if a.pending == 0 {
				delete(m.appliers, k)
				m.applyMu.Unlock()
				return
			}
			m.applyMu.Unlock()
			idle.Reset(applyIdle)
		case <-m.stop:
			for {
				select {
				case op := <-a.ops:
					op.cb(0, wire.ErrShuttingDown)
				default:
					return
				}
			}
		}
	}
}

// failQueuedApplies answers batches queued after their applier stopped
// (a race with Close).
func (m *Manager) failQueuedApplies() {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	for k, a := range m.appliers {
		for done := false; !done; {
			select {
			case op := <-a.ops:
				op.cb(0, wire.ErrShuttingDown)
			default:
				done = true
			}
		}
		delete(m.appliers, k)
	}
}
