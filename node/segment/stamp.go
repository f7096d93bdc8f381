package segment

import (
	"context"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/record"
)

// stamp gives a segment's appends their times: the leader's clock, but
// never below the last time already stored in the topic, so times never
// decrease along the topic even when the next segment's leader has a
// slower clock (SEEK relies on it).
type stamp struct {
	seg   uint64
	timed bool
	last  int64
}

func (s *stamp) next() int64 {
	s.last = max(s.last, time.Now().UnixMilli())
	return s.last
}

// stampLookback bounds how many empty sealed segments stampFor walks back.
const stampLookback = 16

// stampFor finds the time floor of seg, led here: the time of its last
// stored entry, or else of the last entry of the nearest earlier
// non-empty segment (from any replica). When none can be read in time the
// floor is 0 and only this leader's clock orders the segment.
func (m *Manager) stampFor(topic string, seg uint64) stamp {
	st := stamp{seg: seg, timed: m.FSM.Timed(topic, seg)}
	if !st.timed {
		return st
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if n, err := m.count(ctx, engine.SegmentID{Topic: topic, Segment: seg}); err == nil && n > 0 {
		if ts, ok := m.timeAt(ctx, topic, seg, n-1, []uint64{m.cfg.Self}); ok {
			st.last = ts
		}
		return st
	}
	for s := seg - 1; s >= metadata.FirstSegment && s+stampLookback > seg && m.FSM.Timed(topic, s); s-- {
		_, count, sealed, ok := m.FSM.SegmentInfo(topic, s)
		if !ok || !sealed {
			break
		}
		if count == 0 {
			continue
		}
		set, _, _ := m.FSM.SegmentReplicas(topic, s)
		if ts, ok := m.timeAt(ctx, topic, s, count-1, set); ok {
			st.last = ts
		}
		break
	}
	return st
}

// timeAt reads the time of one stored entry from the first holder that
// has it.
func (m *Manager) timeAt(ctx context.Context, topic string, seg, off uint64, holders []uint64) (int64, bool) {
	for _, id := range holders {
		var (
			entries [][]byte
			err     error
		)
		if id == m.cfg.Self {
			entries, err = m.RecoveryRead(ctx, topic, seg, off, 1)
		} else {
			entries, err = m.Peer(id).RecoveryRead(ctx, topic, seg, off, 1)
		}
		if err != nil || len(entries) == 0 {
			continue
		}
		if ts, _, err := record.Decode(entries[0], true); err == nil {
			return ts, true
		}
	}
	return 0, false
}
