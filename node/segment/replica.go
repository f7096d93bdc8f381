package segment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/copyrange"
	"github.com/walrus-go/walrus/node/wire"
)

// ReplicaAppend stores entries of a segment led elsewhere (or copied by
// recovery/repair) at offset first, under epoch, and returns the local
// count afterwards. Entries this replica already holds are skipped (every
// member holds a prefix of the leader's entries); an append past the next
// offset fails with *wire.ReplicaGapError. No entries just reports the
// count (a probe). Sealed segments accept any epoch (their content up to
// the sealed count is final) but never an entry past the sealed count.
func (m *Manager) ReplicaAppend(ctx context.Context, topic string, seg, epoch, first uint64, entries [][]byte) (uint64, error) {
	k := segKey{Topic: topic, Segment: seg}
	l := m.segLocks.For(k)
	l.Lock()
	defer l.Unlock()
	_, sealedCount, sealed, _ := m.FSM.SegmentInfo(topic, seg)
	if !sealed {
		cur, err := m.epochs.Get(k)
		if err != nil {
			return 0, err
		}
		if epoch < cur {
			return 0, fmt.Errorf("%s/%d: append at epoch %d, fenced at %d: %w", topic, seg, epoch, cur, wire.ErrReplicaFenced)
		}
	}
	id := engine.SegmentID{Topic: topic, Segment: seg}
	count, err := m.count(ctx, id)
	if err != nil {
		return 0, err
	}
	if len(entries) == 0 {
		return count, nil
	}
	if first > count {
		return count, &wire.ReplicaGapError{Count: count}
	}
	skip := count - first
	if skip >= uint64(len(entries)) {
		return count, nil // already held
	}
	entries = entries[skip:]
	if sealed {
		if count >= sealedCount {
			return count, nil
		}
		if rest := sealedCount - count; uint64(len(entries)) > rest {
			entries = entries[:rest]
		}
	}
	if err := m.Disk.Check(); err != nil {
		return count, err // the leader backs off as from an unreachable follower
	}
	if _, err := m.Store.Append(ctx, id, entries); err != nil {
		if errors.Is(err, engine.ErrSealed) {
			return count, nil
		}
		return count, fmt.Errorf("replica append %s: %w", id, err)
	}
	count += uint64(len(entries))
	if sealed && count >= sealedCount {
		_, _ = m.Store.Seal(ctx, id)
	}
	return count, nil
}

// ReplicaFence raises the segment's epoch here and returns the local
// count. After it returns, no append at a lower epoch is accepted, so the
// count can only grow through appends at the fence epoch (recovery).
func (m *Manager) ReplicaFence(ctx context.Context, topic string, seg, epoch uint64) (uint64, error) {
	k := segKey{Topic: topic, Segment: seg}
	l := m.segLocks.For(k)
	l.Lock()
	defer l.Unlock()
	if err := m.epochs.Raise(k, epoch); err != nil {
		return 0, err
	}
	m.stopReplicatorFenced(k)
	return m.count(ctx, engine.SegmentID{Topic: topic, Segment: seg})
}

// copyCallTimeout bounds one read or append of a copy.
const copyCallTimeout = 5 * time.Second

// ReplicaPull copies a sealed segment here from the other members until it
// holds count entries, then seals it locally.
func (m *Manager) ReplicaPull(ctx context.Context, topic string, seg, count uint64, sources []uint64) (uint64, error) {
	id := engine.SegmentID{Topic: topic, Segment: seg}
	have, err := m.count(ctx, id)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, src := range sources {
		if have >= count {
			break
		}
		if src == m.cfg.Self {
			continue
		}
		if err := copyrange.Copy(ctx, m.Peer(src), m, topic, seg, 0, have, count, copyCallTimeout); err != nil {
			errs = append(errs, fmt.Errorf("from node %d: %w", src, err))
		}
		if have, err = m.count(ctx, id); err != nil {
			return 0, err
		}
	}
	if have < count {
		return have, fmt.Errorf("pull %s: %d of %d entries: %w", id, have, count, errors.Join(errs...))
	}
	if _, err := m.Store.Seal(ctx, id); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return have, fmt.Errorf("seal %s: %w", id, err)
	}
	return have, nil
}
