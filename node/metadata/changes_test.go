package metadata

import (
	"fmt"
	"io"
	"slices"
	"testing"
)

func changed(t *testing.T, f *FSM, since uint64, kinds uint8) ([]string, uint64, bool) {
	t.Helper()
	var got []string
	now, ok := f.ChangesSince(since, kinds, func(topic string) { got = append(got, topic) })
	return got, now, ok
}

func TestChangesSinceReportsTouchedTopicsByKind(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, CreateTopic{Topic: "a", Leader: 1})
	v1 := f.Version()
	mustApply(t, f, CreateTopics{Topics: []CreateTopic{{Topic: "b", Leader: 1}, {Topic: "c", Leader: 2}}})
	mustApply(t, f, CommitGroups{Commits: []GroupCommit{{Group: "g", Topic: "a", Offset: 0}}})
	mustApply(t, f, Rollover{Topic: "a", Segment: 1, Count: 0, NextLeader: 2})

	got, now, ok := changed(t, f, v1, ChangeRoute)
	if !ok || now != f.Version() || !slices.Equal(got, []string{"b", "c", "a"}) {
		t.Fatalf("route changes since %d = %v (now %d, ok %v)", v1, got, now, ok)
	}
	got, _, _ = changed(t, f, v1, ChangeOffsets)
	if !slices.Equal(got, []string{"a"}) {
		t.Fatalf("offset changes = %v, want [a]", got)
	}
	if got, _, ok := changed(t, f, f.Version(), ChangeRoute|ChangeOffsets); !ok || len(got) != 0 {
		t.Fatalf("changes since now = %v, %v", got, ok)
	}
	if got, _, ok := changed(t, f, 0, ChangeRoute); !ok || !slices.Equal(got, []string{"a", "b", "c", "a"}) {
		t.Fatalf("changes since 0 = %v, %v", got, ok)
	}
}

func TestChangesSinceOverflowAndRestoreAskForRescan(t *testing.T) {
	f := NewFSM()
	names := make([]CreateTopic, changeLogCap+10)
	for i := range names {
		names[i] = CreateTopic{Topic: fmt.Sprintf("t%d", i), Leader: 1}
	}
	mustApply(t, f, CreateTopics{Topics: names[:10]})
	v := f.Version()
	mustApply(t, f, CreateTopics{Topics: names[10:]})
	// The ring dropped the first batch's changes: a consumer that saw
	// nothing must rescan, one that saw the first batch must not.
	if _, _, ok := changed(t, f, 0, ChangeRoute); ok {
		t.Fatal("changes since 0 reported complete after the ring overflowed")
	}
	got, _, ok := changed(t, f, v, ChangeRoute)
	if !ok || len(got) != changeLogCap {
		t.Fatalf("changes since %d: %d topics, ok %v; want %d", v, len(got), ok, changeLogCap)
	}

	g := NewFSM()
	if err := g.Restore(io.NopCloser(persisted(t, f))); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := changed(t, g, 0, ChangeRoute); ok {
		t.Fatal("changes since 0 reported complete after a restore")
	}
	if got, _, ok := changed(t, g, g.Version(), ChangeRoute); !ok || len(got) != 0 {
		t.Fatalf("changes since the restore = %v, %v", got, ok)
	}
}

func TestLeaderIndexFollowsRoutes(t *testing.T) {
	f := NewFSM()
	var x LeaderIndex
	mustApply(t, f, CreateTopics{Topics: []CreateTopic{{Topic: "a", Leader: 1}, {Topic: "b", Leader: 2}, {Topic: "c", Leader: 1}}})
	x.Refresh(f)
	if got := x.TopicsLedBy(1); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("node 1 leads %v", got)
	}
	mustApply(t, f, Rollover{Topic: "a", Segment: 1, Count: 3, NextLeader: 2})
	mustApply(t, f, DeleteTopic{Topic: "c"})
	mustApply(t, f, CommitGroups{Commits: []GroupCommit{{Group: "g", Topic: "b", Offset: 0}}})
	x.Refresh(f)
	if got := x.Leaders(); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("leaders %v, want [2]", got)
	}
	if got := x.TopicsLedBy(2); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("node 2 leads %v", got)
	}
}

// persisted is f's snapshot as Persist writes it.
func persisted(t *testing.T, f *FSM) *memSink {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return &sink
}
