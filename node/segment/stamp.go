package segment

import (
	"context"
	"time"

	"github.com/walrus-go/walrus/engine"
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

// stampFor finds the time floor of seg, led here: the time of its last
// stored entry, or else (Deps.Floor) of the last entry before it. When
// neither can be read in time the floor is 0 and only this leader's clock
// orders the segment.
func (m *Manager) stampFor(topic string, seg uint64) stamp {
	st := stamp{seg: seg, timed: m.FSM.Timed(topic, seg)}
	if !st.timed {
		return st
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	id := engine.SegmentID{Topic: topic, Segment: seg}
	if n, err := m.count(ctx, id); err == nil && n > 0 {
		if e, err := m.Store.Read(ctx, id, n-1, 1, 1); err == nil && len(e) == 1 {
			if ts, _, err := record.Decode(e[0], true); err == nil {
				st.last = ts
			}
		}
		return st
	}
	if m.Floor != nil {
		st.last = m.Floor(ctx, topic, seg)
	}
	return st
}
