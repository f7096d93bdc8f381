package segment

import (
	"context"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/record"
)

// stamp is the time state of the segment a writer appended to last.
type stamp struct {
	seg   uint64
	timed bool
	clock record.Clock
}

// stampFor finds the time floor of seg, led here: the time of its last
// stored entry, or else (Deps.Floor) of the last entry before it; 0 when
// neither can be read in time (only this leader's clock orders it then).
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
			st.clock.Last, _, _ = record.Decode(e[0], true)
		}
	} else if m.Floor != nil {
		st.clock.Last = m.Floor(ctx, topic, seg)
	}
	return st
}
