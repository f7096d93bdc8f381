package metadata

import (
	"errors"
	"testing"
)

func TestDeleteSegmentsMovesEarliestCursorAndGroups(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, CreateTopic{Topic: "a", Leader: 1, Timed: true})
	for seg, n := range []uint64{5, 0, 7, 3} {
		mustApply(t, f, Rollover{Topic: "a", Segment: uint64(seg) + 1, Count: n, NextLeader: 1, Timed: true})
	}
	mustApply(t, f, CommitCursors{Cursors: []CursorCommit{{Topic: "a", Cursor: Cursor{Segment: 1, Offset: 2}}}})
	mustApply(t, f, CommitGroups{Commits: []GroupCommit{{Group: "slow", Topic: "a", Offset: 4}, {Group: "fast", Topic: "a", Offset: 13}}})
	if r := mustApply(t, f, DeleteSegments{Topic: "a", Through: 5}); !errors.Is(r.Err, ErrInvalidCommand) {
		t.Fatalf("deleting the open segment: %+v", r)
	}
	mustApply(t, f, DeleteSegments{Topic: "a", Through: 3}) // 5 + 0 + 7 entries
	tp, _ := f.Topic("a")
	if tp.Earliest != 12 || tp.BaseSegment() != 4 || tp.SealedOffset != 15 || len(tp.SealedSegments) != 1 || len(tp.SegmentLeaders) != 2 {
		t.Fatalf("after delete: %+v", tp)
	}
	if tp.Cursor != (Cursor{Segment: 4}) || tp.Skipped[""] != 10 {
		t.Fatalf("cursor %+v skipped %v", tp.Cursor, tp.Skipped)
	}
	if tp.Groups["slow"] != 12 || tp.Skipped["slow"] != 8 || tp.Groups["fast"] != 13 || tp.Skipped["fast"] != 0 {
		t.Fatalf("groups %v skipped %v", tp.Groups, tp.Skipped)
	}
	for _, c := range []struct{ off, seg, segOff uint64 }{{12, 4, 0}, {14, 4, 2}, {15, 5, 0}, {3, 4, 0}} {
		if seg, so := tp.Locate(c.off); seg != c.seg || so != c.segOff {
			t.Fatalf("Locate(%d) = %d,%d want %d,%d", c.off, seg, so, c.seg, c.segOff)
		}
	}
	if r := mustApply(t, f, DeleteSegments{Topic: "a", Through: 2}); r.Status != NoOp {
		t.Fatalf("a retried delete: %+v", r)
	}
	// A group commit below earliest lands on earliest.
	mustApply(t, f, CommitGroups{Commits: []GroupCommit{{Group: "late", Topic: "a", Offset: 1}}})
	if off, _ := f.GroupOffset("a", "late"); off != 12 {
		t.Fatalf("late group at %d", off)
	}
}

func TestAlterTopic(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, CreateTopic{Topic: "a", Leader: 1})
	age, five := int64(1000), uint64(5)
	mustApply(t, f, AlterTopic{Topic: "a", MaxAgeMs: &age, MaxBytes: &five})
	zero, n := uint64(0), uint64(9)
	mustApply(t, f, AlterTopic{Topic: "a", MaxBytes: &zero, MaxEntries: &n})
	// max_bytes 0 is "no limit" even when the default has one; the age
	// limit set earlier stays; nothing else follows the default.
	def := Limits{MaxAgeMs: 1, MaxBytes: 2, MaxEntries: 3}
	if tp, _ := f.Topic("a"); tp.Retention.Effective(def) != (Limits{MaxAgeMs: 1000, MaxEntries: 9}) {
		t.Fatalf("retention %+v", tp.Retention.Effective(def))
	}
	if tp, _ := f.Topic("a"); (Retention{}).Effective(def) != def || tp.Retention.Effective(Limits{}) != (Limits{MaxAgeMs: 1000, MaxEntries: 9}) {
		t.Fatal("defaults")
	}
	if r := mustApply(t, f, AlterTopic{Topic: "a", MaxEntries: &n}); r.Status != NoOp {
		t.Fatalf("same alter: %+v", r)
	}
	neg := int64(-1)
	if r := mustApply(t, f, AlterTopic{Topic: "a", MaxAgeMs: &neg}); !errors.Is(r.Err, ErrInvalidCommand) {
		t.Fatalf("negative age: %+v", r)
	}
	if r := mustApply(t, f, AlterTopic{Topic: "gone", MaxEntries: &n}); !errors.Is(r.Err, ErrUnknownTopic) {
		t.Fatalf("unknown topic: %+v", r)
	}
}

// TestDeletedTopicNeverReusesSegmentIDs: a topic created again after a
// DELETE numbers its segments after the old ones, so files of the old
// topic on a replica that was down are never read as the new topic's.
func TestDeletedTopicNeverReusesSegmentIDs(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, CreateTopic{Topic: "a", Leader: 1, Timed: true})
	mustApply(t, f, Rollover{Topic: "a", Segment: 1, Count: 4, NextLeader: 2, Timed: true})
	mustApply(t, f, DeleteTopic{Topic: "a"})
	if _, ok := f.Topic("a"); ok {
		t.Fatal("topic still there")
	}
	if r := mustApply(t, f, DeleteTopic{Topic: "a"}); r.Status != NoOp {
		t.Fatalf("delete again: %+v", r)
	}
	mustApply(t, f, CreateTopic{Topic: "a", Leader: 3, Timed: true})
	tp, _ := f.Topic("a")
	if tp.CurrentSegment != 3 || tp.BaseSegment() != 3 || tp.SealedOffset != 0 || tp.Earliest != 0 || tp.Cursor.Segment != 3 || !tp.Timed(3) {
		t.Fatalf("re-created: %+v", tp)
	}
	if seg, off := tp.Locate(0); seg != 3 || off != 0 {
		t.Fatalf("Locate(0) = %d,%d", seg, off)
	}
	if len(f.State().Deleted) != 0 {
		t.Fatal("tombstone kept after re-create")
	}
}

// TestSnapshotStaysFlatUnderRetention: 10,000 rollovers of a topic that
// keeps 5 segments leave a snapshot the size of 5 segments.
func TestSnapshotStaysFlatUnderRetention(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, CreateTopic{Topic: "a", Leader: 1, Replicas: []uint64{1, 2, 3}, Timed: true})
	size := func() int { return persisted(t, f).Len() }
	var sizes []int
	for seg := uint64(1); seg <= 10_000; seg++ {
		f.ApplyCommand(Rollover{Topic: "a", Segment: seg, Count: 1000, NextLeader: seg%3 + 1, NextReplicas: []uint64{seg%3 + 1, (seg+1)%3 + 1, (seg+2)%3 + 1}, Timed: true})
		if seg > 5 {
			f.ApplyCommand(DeleteSegments{Topic: "a", Through: seg - 5})
		}
		if seg%2500 == 0 {
			sizes = append(sizes, size())
		}
	}
	t.Logf("snapshot bytes after 2,500/5,000/7,500/10,000 rollovers: %v", sizes)
	for _, s := range sizes[1:] {
		if s > sizes[0]+64 { // a few more digits in the numbers
			t.Fatalf("snapshot grows: %v", sizes)
		}
	}
}

func TestCreateTopicsInOneEntry(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, CreateTopic{Topic: "a", Leader: 1})
	r := mustApply(t, f, CreateTopics{Topics: []CreateTopic{{Topic: "a", Leader: 2}, {Topic: "b", Leader: 2, Timed: true}, {Topic: "bad/name", Leader: 1}, {Topic: "c", Leader: 3}}})
	if r.Status != Applied || !errors.Is(r.Err, ErrInvalidCommand) {
		t.Fatalf("result %+v", r)
	}
	if tp, _ := f.Topic("a"); tp.LeaderNode != 1 {
		t.Fatal("an existing topic changed")
	}
	if tp, ok := f.Topic("b"); !ok || tp.LeaderNode != 2 || !tp.Timed(1) {
		t.Fatalf("b: %+v", tp)
	}
	if _, ok := f.Topic("c"); !ok || f.TopicCount() != 3 {
		t.Fatal("c missing (an invalid sibling must not stop the others)")
	}
	if r := mustApply(t, f, CreateTopics{}); !errors.Is(r.Err, ErrInvalidCommand) {
		t.Fatalf("empty: %+v", r)
	}
}
