package metadata

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func mustApply(t *testing.T, f *FSM, c Command) Result {
	t.Helper()
	b, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := f.Apply(&raft.Log{Type: raft.LogCommand, Data: b}).(Result)
	if !ok {
		t.Fatalf("Apply returned %T", r)
	}
	return r
}

func TestCreateTopicIdempotent(t *testing.T) {
	f := NewFSM()
	if r := mustApply(t, f, CreateTopic{Topic: "logs", Leader: 2}); r.Status != Applied || r.Err != nil {
		t.Fatalf("first create: %+v", r)
	}
	if r := mustApply(t, f, CreateTopic{Topic: "logs", Leader: 3}); r.Status != NoOp || r.Err != nil {
		t.Fatalf("repeat create: %+v", r)
	}
	tp, ok := f.Topic("logs")
	if !ok || tp.CurrentSegment != 1 || tp.LeaderNode != 2 || tp.SegmentLeaders[1] != 2 || tp.Cursor != (Cursor{Segment: 1}) {
		t.Fatalf("topic = %+v", tp)
	}
}

func TestCreateTopicInvalid(t *testing.T) {
	f := NewFSM()
	for _, tc := range []struct {
		name string
		cmd  CreateTopic
	}{
		{"empty name", CreateTopic{Topic: "", Leader: 1}},
		{"slash", CreateTopic{Topic: "a/b", Leader: 1}},
		{"leader zero", CreateTopic{Topic: "a", Leader: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustApply(t, f, tc.cmd)
			if !errors.Is(r.Err, ErrInvalidCommand) {
				t.Fatalf("got %+v, want ErrInvalidCommand", r)
			}
		})
	}
	if f.TopicCount() != 0 {
		t.Fatal("invalid create changed state")
	}
}

func TestRollover(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, CreateTopic{Topic: "logs", Leader: 1})
	if r := mustApply(t, f, Rollover{Topic: "logs", Segment: 1, Count: 50, NextLeader: 2}); r.Status != Applied || r.Err != nil {
		t.Fatalf("rollover: %+v", r)
	}
	// A retried proposal of the same rollover is a no-op.
	if r := mustApply(t, f, Rollover{Topic: "logs", Segment: 1, Count: 51, NextLeader: 3}); r.Status != NoOp || r.Err != nil {
		t.Fatalf("repeat rollover: %+v", r)
	}
	// A rollover of a future segment is invalid.
	if r := mustApply(t, f, Rollover{Topic: "logs", Segment: 5, Count: 1, NextLeader: 3}); !errors.Is(r.Err, ErrInvalidCommand) {
		t.Fatalf("future rollover: %+v", r)
	}
	if r := mustApply(t, f, Rollover{Topic: "nope", Segment: 1, Count: 1, NextLeader: 3}); !errors.Is(r.Err, ErrUnknownTopic) {
		t.Fatalf("unknown topic rollover: %+v", r)
	}
	mustApply(t, f, Rollover{Topic: "logs", Segment: 2, Count: 40, NextLeader: 3})
	tp, _ := f.Topic("logs")
	want := map[uint64]uint64{1: 50, 2: 40}
	if tp.CurrentSegment != 3 || tp.LeaderNode != 3 || !reflect.DeepEqual(tp.SealedSegments, want) || tp.SealedOffset != 90 {
		t.Fatalf("topic = %+v", tp)
	}
	if !reflect.DeepEqual(tp.SegmentLeaders, map[uint64]uint64{1: 1, 2: 2, 3: 3}) {
		t.Fatalf("segment leaders = %v", tp.SegmentLeaders)
	}
	r, _ := f.Route("logs")
	if r != (Route{Segment: 3, Leader: 3, Epoch: 1, SealedOffset: 90}) {
		t.Fatalf("route = %+v", r)
	}
}

func TestCommitCursors(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, CreateTopic{Topic: "a", Leader: 1})
	mustApply(t, f, Rollover{Topic: "a", Segment: 1, Count: 10, NextLeader: 2})
	cases := []struct {
		name   string
		pos    Cursor
		status Status
		want   Cursor
	}{
		{"advance in sealed", Cursor{1, 4}, Applied, Cursor{1, 4}},
		{"behind is ignored", Cursor{1, 2}, NoOp, Cursor{1, 4}},
		{"past sealed count is ignored", Cursor{1, 11}, NoOp, Cursor{1, 4}},
		{"end of sealed normalises", Cursor{1, 10}, Applied, Cursor{2, 0}},
		{"open segment", Cursor{2, 7}, Applied, Cursor{2, 7}},
		{"future segment ignored", Cursor{3, 0}, NoOp, Cursor{2, 7}},
		{"repeat", Cursor{2, 7}, NoOp, Cursor{2, 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustApply(t, f, CommitCursors{Cursors: []CursorCommit{{Topic: "a", Cursor: tc.pos}, {Topic: "gone", Cursor: tc.pos}}})
			if r.Err != nil || r.Status != tc.status {
				t.Fatalf("result %+v, want %v", r, tc.status)
			}
			tp, _ := f.Topic("a")
			if tp.Cursor != tc.want {
				t.Fatalf("cursor %+v, want %+v", tp.Cursor, tc.want)
			}
		})
	}
}

func TestNodes(t *testing.T) {
	f := NewFSM()
	n := Node{ID: 2, RaftAddr: "127.0.0.1:6002", RPCAddr: "127.0.0.1:6002", ClientAddr: "127.0.0.1:9092"}
	if r := mustApply(t, f, UpsertNode{Node: n}); r.Status != Applied {
		t.Fatalf("%+v", r)
	}
	if r := mustApply(t, f, UpsertNode{Node: n}); r.Status != NoOp {
		t.Fatalf("%+v", r)
	}
	if got, ok := f.Node(2); !ok || got != n {
		t.Fatalf("node = %+v", got)
	}
	if r := mustApply(t, f, UpsertNode{Node: Node{}}); !errors.Is(r.Err, ErrInvalidCommand) {
		t.Fatalf("%+v", r)
	}
	if r := mustApply(t, f, RemoveNode{ID: 2}); r.Status != Applied {
		t.Fatalf("%+v", r)
	}
	if r := mustApply(t, f, RemoveNode{ID: 2}); r.Status != NoOp {
		t.Fatalf("%+v", r)
	}
}

func TestChangedIsClosedOnApply(t *testing.T) {
	f := NewFSM()
	ch := f.Changed()
	mustApply(t, f, CreateTopic{Topic: "a", Leader: 1})
	select {
	case <-ch:
	default:
		t.Fatal("Changed not closed after an applied command")
	}
	ch = f.Changed()
	mustApply(t, f, CreateTopic{Topic: "a", Leader: 1}) // no-op
	select {
	case <-ch:
		t.Fatal("Changed closed by a no-op")
	default:
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, CreateTopic{Topic: "a", Leader: 1, Replicas: []uint64{1, 2, 3}})
	mustApply(t, f, CreateTopic{Topic: "b", Leader: 2})
	mustApply(t, f, Rollover{Topic: "a", Segment: 1, Count: 7, NextLeader: 2, NextReplicas: []uint64{2, 3, 1}})
	mustApply(t, f, CommitCursors{Cursors: []CursorCommit{{Topic: "a", Cursor: Cursor{1, 3}}}})
	mustApply(t, f, UpsertNode{Node: Node{ID: 1, RaftAddr: "x:1", RPCAddr: "x:1", ClientAddr: "x:2"}})

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	g := NewFSM()
	if err := g.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.State(), g.State()) {
		t.Fatalf("restored state differs:\n got %+v\nwant %+v", g.State(), f.State())
	}
	if err := g.Restore(io.NopCloser(bytes.NewReader([]byte("{not json")))); err == nil {
		t.Fatal("restore of garbage succeeded")
	}
}

func TestStateCopiesAreIndependent(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, CreateTopic{Topic: "a", Leader: 1})
	tp, _ := f.Topic("a")
	tp.SegmentLeaders[1] = 99
	st := f.State()
	st.Topics["a"].LeaderNode = 99
	again, _ := f.Topic("a")
	if again.SegmentLeaders[1] != 1 || again.LeaderNode != 1 {
		t.Fatal("accessor returned a reference into the live state")
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	cmds := []Command{
		CreateTopic{Topic: "a", Leader: 1, Replicas: []uint64{1, 2}},
		Rollover{Topic: "a", Segment: 3, Count: 9, NextLeader: 2},
		UpsertNode{Node: Node{ID: 1, RaftAddr: "r", RPCAddr: "p", ClientAddr: "c"}},
		RemoveNode{ID: 3},
		CommitCursors{Cursors: []CursorCommit{{Topic: "a", Cursor: Cursor{2, 5}}}},
		CommitGroups{Commits: []GroupCommit{{Group: "g", Topic: "a", Offset: 7}}},
		CreateTopics{Topics: []CreateTopic{{Topic: "x", Leader: 1, Timed: true}, {Topic: "y", Leader: 2}}},
	}
	for _, c := range cmds {
		b, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip %v: got %+v want %+v", c.Kind(), got, c)
		}
	}
	for _, bad := range [][]byte{nil, {1}, {99, '{', '}'}, {1, 'x', 'y'}} {
		if _, err := Decode(bad); !errors.Is(err, ErrInvalidCommand) {
			t.Fatalf("Decode(%q) err = %v", bad, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range []Command{
		CreateTopic{Topic: "a", Leader: 1},
		Rollover{Topic: "a", Segment: 1, Count: 2, NextLeader: 2},
		UpsertNode{Node: Node{ID: 1, RaftAddr: "r"}},
		RemoveNode{ID: 1},
		CommitCursors{Cursors: []CursorCommit{{Topic: "a", Cursor: Cursor{1, 1}}}},
		CommitGroups{Commits: []GroupCommit{{Group: "g", Topic: "a", Offset: 1}}},
	} {
		b, _ := Encode(c)
		f.Add(b)
	}
	f.Add([]byte{5, 'n', 'u', 'l', 'l'})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			return
		}
		// Whatever decodes must apply without panicking and re-encode.
		fsm := NewFSM()
		fsm.ApplyCommand(CreateTopic{Topic: "a", Leader: 1})
		fsm.ApplyCommand(c)
		if _, err := Encode(c); err != nil {
			t.Fatal(err)
		}
	})
}

// TestOpenedAtIsTheRaftIndex: the index that opened the current segment is
// recorded (a restarted segment leader compares it with its own start).
func TestOpenedAtIsTheRaftIndex(t *testing.T) {
	f := NewFSM()
	apply := func(idx uint64, c Command) {
		t.Helper()
		b, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if r := f.Apply(&raft.Log{Type: raft.LogCommand, Index: idx, Data: b}).(Result); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	apply(7, CreateTopic{Topic: "t", Leader: 1})
	if tp, _ := f.Topic("t"); tp.OpenedAt != 7 {
		t.Fatalf("OpenedAt after create = %d, want 7", tp.OpenedAt)
	}
	apply(9, Rollover{Topic: "t", Segment: 1, Count: 3, NextLeader: 2})
	if tp, _ := f.Topic("t"); tp.OpenedAt != 9 || tp.CurrentSegment != 2 {
		t.Fatalf("after rollover: %+v, want OpenedAt 9", tp)
	}
}

// TestGroupsCommitAndRewind: group offsets are set (forward or back), a
// commit to a missing topic is skipped, an invalid group name is refused,
// and a restored snapshot keeps them.
func TestGroupsCommitAndRewind(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, CreateTopic{Topic: "a", Leader: 1})
	if r := mustApply(t, f, CommitGroups{Commits: []GroupCommit{{Group: "g", Topic: "a", Offset: 9}, {Group: "g", Topic: "gone", Offset: 1}}}); r.Err != nil || r.Status != Applied {
		t.Fatalf("commit: %+v", r)
	}
	if r := mustApply(t, f, CommitGroups{Commits: []GroupCommit{{Group: "g", Topic: "a", Offset: 9}}}); r.Status != NoOp {
		t.Fatalf("same commit again: %+v", r)
	}
	mustApply(t, f, CommitGroups{Commits: []GroupCommit{{Group: "g", Topic: "a", Offset: 4}}})
	if off, ok := f.GroupOffset("a", "g"); !ok || off != 4 {
		t.Fatalf("offset %d %v, want 4", off, ok)
	}
	if r := mustApply(t, f, CommitGroups{Commits: []GroupCommit{{Group: "bad group", Topic: "a", Offset: 1}}}); !errors.Is(r.Err, ErrInvalidCommand) {
		t.Fatalf("bad name: %+v", r)
	}
	if r := mustApply(t, f, CommitGroups{}); !errors.Is(r.Err, ErrInvalidCommand) {
		t.Fatalf("empty: %+v", r)
	}
	mustApply(t, f, CommitGroups{Commits: []GroupCommit{{Group: "h", Topic: "a", Offset: 2}}})
	if r := mustApply(t, f, CommitGroups{Commits: []GroupCommit{{Group: "h", Topic: "a", Delete: true}}}); r.Status != Applied {
		t.Fatalf("delete: %+v", r)
	}
	if _, ok := f.GroupOffset("a", "h"); ok {
		t.Fatal("a deleted group offset is still there")
	}
	if r := mustApply(t, f, CommitGroups{Commits: []GroupCommit{{Group: "h", Topic: "a", Delete: true}}}); r.Status != NoOp {
		t.Fatalf("delete again: %+v", r)
	}
	snap, _ := f.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM()
	if err := g.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if off, ok := g.GroupOffset("a", "g"); !ok || off != 4 {
		t.Fatalf("restored offset %d %v", off, ok)
	}
}

// TestTimedFromAndLocate: new topics are timed from their first segment,
// topics from before records start at their next segment; offsets map to
// segments by the sealed counts.
func TestTimedFromAndLocate(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, CreateTopic{Topic: "a", Leader: 1, Timed: true})
	mustApply(t, f, Rollover{Topic: "a", Segment: 1, Count: 3, NextLeader: 2, Timed: true})
	mustApply(t, f, Rollover{Topic: "a", Segment: 2, Count: 0, NextLeader: 1, Timed: true})
	mustApply(t, f, Rollover{Topic: "a", Segment: 3, Count: 5, NextLeader: 2, Timed: true})
	tp, _ := f.Topic("a")
	if tp.TimedFrom != 1 || !tp.Timed(1) {
		t.Fatalf("TimedFrom %d", tp.TimedFrom)
	}
	for _, c := range []struct{ off, seg, segOff uint64 }{{0, 1, 0}, {2, 1, 2}, {3, 3, 0}, {7, 3, 4}, {8, 4, 0}, {12, 4, 4}} {
		if seg, so := tp.Locate(c.off); seg != c.seg || so != c.segOff {
			t.Fatalf("Locate(%d) = %d,%d want %d,%d", c.off, seg, so, c.seg, c.segOff)
		}
	}
	if s, ok := tp.SegmentStart(3); !ok || s != 3 {
		t.Fatalf("SegmentStart(3) = %d %v", s, ok)
	}
	if s, ok := tp.SegmentStart(4); !ok || s != 8 {
		t.Fatalf("SegmentStart(4) = %d %v", s, ok)
	}
	if _, ok := tp.SegmentStart(5); ok {
		t.Fatal("SegmentStart(5) exists")
	}
	// Commands of an older version (no "timed") replayed from its Raft
	// log leave the topic untimed; a new version's rollover times the
	// segment it opens.
	old := NewFSM()
	for _, raw := range []string{`{"topic":"o","leader":1}`, `{"topic":"o","segment":1,"count":2,"next_leader":1}`} {
		kind := KindCreateTopic
		if strings.Contains(raw, "segment") {
			kind = KindRollover
		}
		c, err := Decode(append([]byte{byte(kind)}, raw...))
		if err != nil {
			t.Fatal(err)
		}
		mustApply(t, old, c)
	}
	if tp, _ := old.Topic("o"); tp.TimedFrom != 0 || tp.Timed(2) {
		t.Fatalf("old commands timed the topic: %d", tp.TimedFrom)
	}
	mustApply(t, old, Rollover{Topic: "o", Segment: 2, Count: 2, NextLeader: 1, Timed: true})
	if tp, _ := old.Topic("o"); tp.TimedFrom != 3 || tp.Timed(2) || !tp.Timed(3) {
		t.Fatalf("old topic TimedFrom %d", tp.TimedFrom)
	}
}
