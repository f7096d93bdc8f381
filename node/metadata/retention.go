package metadata

import (
	"fmt"

	"github.com/walrus-go/walrus/engine"
)

func (f *FSM) applyAlter(c AlterTopic) Result {
	t, ok := f.state.Topics[c.Topic]
	if !ok {
		return Result{Err: fmt.Errorf("metadata: alter %q: %w", c.Topic, ErrUnknownTopic)}
	}
	if c.MaxAgeMs != nil && *c.MaxAgeMs < 0 {
		return invalid("alter %q: max_age_ms %d < 0", c.Topic, *c.MaxAgeMs)
	}
	next := Retention{MaxAgeMs: c.MaxAgeMs, MaxBytes: c.MaxBytes, MaxEntries: c.MaxEntries}.clone()
	r := t.Retention.clone()
	changed := false
	if next.MaxAgeMs != nil && (r.MaxAgeMs == nil || *r.MaxAgeMs != *next.MaxAgeMs) {
		r.MaxAgeMs, changed = next.MaxAgeMs, true
	}
	if next.MaxBytes != nil && (r.MaxBytes == nil || *r.MaxBytes != *next.MaxBytes) {
		r.MaxBytes, changed = next.MaxBytes, true
	}
	if next.MaxEntries != nil && (r.MaxEntries == nil || *r.MaxEntries != *next.MaxEntries) {
		r.MaxEntries, changed = next.MaxEntries, true
	}
	if !changed {
		return Result{Status: NoOp}
	}
	t.Retention = r
	return Result{Status: Applied}
}

// applyDeleteSegments drops sealed segments Base..Through. The shared
// cursor and the groups below the new earliest offset move up to it, and
// what they skip is counted in Skipped.
func (f *FSM) applyDeleteSegments(c DeleteSegments) Result {
	t, ok := f.state.Topics[c.Topic]
	if !ok {
		return Result{Err: fmt.Errorf("metadata: delete segments %q: %w", c.Topic, ErrUnknownTopic)}
	}
	base := t.BaseSegment()
	switch {
	case c.Through < base:
		return Result{Status: NoOp} // already deleted (a retried proposal)
	case c.Through >= t.CurrentSegment:
		return invalid("delete segments %q through %d: segment %d is open", c.Topic, c.Through, t.CurrentSegment)
	}
	cursorStart, _ := t.SegmentStart(t.Cursor.Segment)
	cursorOff := cursorStart + t.Cursor.Offset
	for s := base; s <= c.Through; s++ {
		t.Earliest += t.SealedSegments[s]
		delete(t.SealedSegments, s)
		delete(t.SegmentLeaders, s)
		delete(t.Replicas, s)
	}
	t.Base = c.Through + 1
	if t.Cursor.Segment < t.Base {
		t.addSkipped("", t.Earliest-min(t.Earliest, cursorOff))
		t.Cursor = Cursor{Segment: t.Base}
	}
	for g, off := range t.Groups {
		if off < t.Earliest {
			t.addSkipped(g, t.Earliest-off)
			t.Groups[g] = t.Earliest
		}
	}
	return Result{Status: Applied}
}

func (t *Topic) addSkipped(who string, n uint64) {
	if n == 0 {
		return
	}
	if t.Skipped == nil {
		t.Skipped = map[string]uint64{}
	}
	t.Skipped[who] += n
}

func (f *FSM) applyDeleteTopic(c DeleteTopic) Result {
	if err := engine.ValidateTopic(c.Topic); err != nil {
		return invalid("delete topic: %v", err)
	}
	t, ok := f.state.Topics[c.Topic]
	if !ok {
		return Result{Status: NoOp}
	}
	if f.state.Deleted == nil {
		f.state.Deleted = map[string]uint64{}
	}
	f.state.Deleted[c.Topic] = t.CurrentSegment + 1
	delete(f.state.Topics, c.Topic)
	return Result{Status: Applied}
}

// applyCreateTopics applies each creation; an invalid one fails alone
// (the proposer validated them) and the others still apply.
func (f *FSM) applyCreateTopics(c CreateTopics) Result {
	if len(c.Topics) == 0 {
		return invalid("create topics: empty")
	}
	res := Result{Status: NoOp}
	for _, ct := range c.Topics {
		switch r := f.applyCreate(ct); {
		case r.Err != nil && res.Err == nil:
			res.Err = r.Err
		case r.Status == Applied:
			res.Status = Applied
		}
	}
	return res
}
