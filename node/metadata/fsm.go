package metadata

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/walrus-go/walrus/engine"
)

// Status says what Apply did with a valid command.
type Status uint8

const (
	// Applied: the command changed the state.
	Applied Status = iota + 1
	// NoOp: the command was a repeat or stale and changed nothing.
	NoOp
)

func (s Status) String() string {
	switch s {
	case Applied:
		return "applied"
	case NoOp:
		return "noop"
	}
	return "invalid"
}

// Result is what Apply returns for every log entry (raft hands it back
// through ApplyFuture.Response).
type Result struct {
	Status Status
	// Err is set when the command was rejected; the state is unchanged.
	Err error
}

// FSM is the raft.FSM holding the ClusterState.
type FSM struct {
	mu      sync.RWMutex
	state   *ClusterState
	changed chan struct{}
	version uint64
	// index is the Raft index of the command being applied (under mu).
	index uint64
	// changes lists which topics recent versions changed (ChangesSince).
	changes changeLog
}

var _ raft.FSM = (*FSM)(nil)

// NewFSM returns an FSM with an empty state.
func NewFSM() *FSM {
	return &FSM{state: NewClusterState(), changed: make(chan struct{})}
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return Result{Status: NoOp}
	}
	cmd, err := Decode(l.Data)
	if err != nil {
		return Result{Err: err}
	}
	return f.apply(l.Index, cmd)
}

// ApplyCommand applies a decoded command. It is exported for tests and for
// tools that replay commands without a Raft log (as if at index 0).
func (f *FSM) ApplyCommand(cmd Command) Result { return f.apply(0, cmd) }

// apply applies cmd, committed at Raft index idx.
func (f *FSM) apply(idx uint64, cmd Command) Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index = idx
	var r Result
	switch c := cmd.(type) {
	case CreateTopic:
		r = f.applyCreate(c)
	case Rollover:
		r = f.applyRollover(c)
	case UpsertNode:
		r = f.applyUpsertNode(c)
	case RemoveNode:
		r = f.applyRemoveNode(c)
	case CommitCursors:
		r = f.applyCursors(c)
	case SetReplicas:
		r = f.applySetReplicas(c)
	case CommitGroups:
		r = f.applyGroups(c)
	case AlterTopic:
		r = f.applyAlter(c)
	case DeleteSegments:
		r = f.applyDeleteSegments(c)
	case DeleteTopic:
		r = f.applyDeleteTopic(c)
	case CreateTopics:
		r = f.applyCreateTopics(c)
	case AllocProducerIDs:
		r = f.applyAllocProducerIDs(c)
	default:
		r = Result{Err: fmt.Errorf("metadata: command %T: %w", cmd, ErrInvalidCommand)}
	}
	if r.Err == nil && r.Status == Applied {
		f.recordLocked(cmd)
		f.notifyLocked()
	}
	return r
}

func (f *FSM) notifyLocked() {
	f.version++
	close(f.changed)
	f.changed = make(chan struct{})
}

func invalid(format string, args ...any) Result {
	return Result{Err: fmt.Errorf("metadata: "+format+": %w", append(args, ErrInvalidCommand)...)}
}

func (f *FSM) applyCreate(c CreateTopic) Result {
	if err := engine.ValidateTopic(c.Topic); err != nil {
		return invalid("create topic: %v", err)
	}
	if c.Leader == 0 {
		return invalid("create topic %q: leader 0", c.Topic)
	}
	if _, ok := f.state.Topics[c.Topic]; ok {
		return Result{Status: NoOp}
	}
	first := max(f.state.Deleted[c.Topic], FirstSegment)
	delete(f.state.Deleted, c.Topic)
	t := &Topic{
		Name:           c.Topic,
		CurrentSegment: first,
		LeaderNode:     c.Leader,
		Epoch:          1,
		SealedSegments: map[uint64]uint64{},
		SegmentLeaders: map[uint64]uint64{first: c.Leader},
		Cursor:         Cursor{Segment: first},
		Base:           first,
		Incarnation:    f.index,
		OpenedAtMs:     c.OpenedMs,

		ReplicationFactor: c.ReplicationFactor,
		AckQuorum:         c.AckQuorum,
		OpenedAt:          f.index,
	}
	if c.Timed {
		t.TimedFrom = first
	}
	if len(c.Replicas) > 0 {
		t.Replicas = map[uint64][]uint64{first: slices.Clone(c.Replicas)}
	}
	f.state.Topics[c.Topic] = t
	return Result{Status: Applied}
}

func (f *FSM) applyRollover(c Rollover) Result {
	t, ok := f.state.Topics[c.Topic]
	if !ok {
		return Result{Err: fmt.Errorf("metadata: rollover %q: %w", c.Topic, ErrUnknownTopic)}
	}
	switch {
	case c.Segment < t.CurrentSegment:
		// Already rolled (a retried or stale proposal).
		return Result{Status: NoOp}
	case c.Segment > t.CurrentSegment:
		return invalid("rollover %q segment %d: open segment is %d", c.Topic, c.Segment, t.CurrentSegment)
	case c.NextLeader == 0:
		return invalid("rollover %q segment %d: next leader 0", c.Topic, c.Segment)
	}
	t.SealedSegments[c.Segment] = c.Count
	t.SealedOffset += c.Count
	t.CurrentSegment = c.Segment + 1
	t.LeaderNode = c.NextLeader
	t.Epoch = 1
	t.OpenedAt = f.index
	t.OpenedAtMs = c.OpenedMs
	t.SegmentLeaders[t.CurrentSegment] = c.NextLeader
	if c.Timed && t.TimedFrom == 0 {
		t.TimedFrom = t.CurrentSegment
	}
	if len(c.NextReplicas) > 0 {
		if t.Replicas == nil {
			t.Replicas = map[uint64][]uint64{}
		}
		t.Replicas[t.CurrentSegment] = slices.Clone(c.NextReplicas)
	}
	// A cursor parked at the end of the segment just sealed moves on, so
	// the committed cursor always names a readable position.
	if t.Cursor.Segment == c.Segment && t.Cursor.Offset >= c.Count {
		t.Cursor = Cursor{Segment: t.CurrentSegment}
	}
	return Result{Status: Applied}
}

func (f *FSM) applySetReplicas(c SetReplicas) Result {
	t, ok := f.state.Topics[c.Topic]
	if !ok {
		return Result{Err: fmt.Errorf("metadata: set replicas %q: %w", c.Topic, ErrUnknownTopic)}
	}
	if _, sealed := t.SealedSegments[c.Segment]; !sealed {
		return invalid("set replicas %q segment %d: only sealed segments are re-replicated", c.Topic, c.Segment)
	}
	if len(c.Replicas) == 0 || slices.Contains(c.Replicas, 0) {
		return invalid("set replicas %q segment %d: bad set %v", c.Topic, c.Segment, c.Replicas)
	}
	if slices.Equal(t.Replicas[c.Segment], c.Replicas) {
		return Result{Status: NoOp}
	}
	if t.Replicas == nil {
		t.Replicas = map[uint64][]uint64{}
	}
	t.Replicas[c.Segment] = slices.Clone(c.Replicas)
	return Result{Status: Applied}
}

func (f *FSM) applyUpsertNode(c UpsertNode) Result {
	if c.Node.ID == 0 {
		return invalid("upsert node: id 0")
	}
	if old, ok := f.state.Nodes[c.Node.ID]; ok && old == c.Node {
		return Result{Status: NoOp}
	}
	f.state.Nodes[c.Node.ID] = c.Node
	return Result{Status: Applied}
}

func (f *FSM) applyRemoveNode(c RemoveNode) Result {
	if _, ok := f.state.Nodes[c.ID]; !ok {
		return Result{Status: NoOp}
	}
	delete(f.state.Nodes, c.ID)
	delete(f.state.ProducerBlocks, c.ID)
	return Result{Status: Applied}
}

func (f *FSM) applyCursors(c CommitCursors) Result {
	if len(c.Cursors) == 0 {
		return invalid("commit cursors: empty")
	}
	changed := false
	for _, cc := range c.Cursors {
		t, ok := f.state.Topics[cc.Topic]
		if !ok {
			continue // topic gone: nothing to commit
		}
		pos := cc.Cursor
		if pos.Segment == 0 || pos.Segment > t.CurrentSegment {
			continue
		}
		if n, sealed := t.SealedSegments[pos.Segment]; sealed {
			if pos.Offset > n {
				continue
			}
			if pos.Offset == n {
				pos = Cursor{Segment: pos.Segment + 1}
			}
		}
		if !t.Cursor.Less(pos) {
			continue
		}
		t.Cursor = pos
		changed = true
	}
	if !changed {
		return Result{Status: NoOp}
	}
	return Result{Status: Applied}
}

func (f *FSM) applyGroups(c CommitGroups) Result {
	if len(c.Commits) == 0 {
		return invalid("commit groups: empty")
	}
	changed := false
	for _, gc := range c.Commits {
		if err := engine.ValidateTopic(gc.Group); err != nil {
			return invalid("commit groups: group: %v", err)
		}
		t, ok := f.state.Topics[gc.Topic]
		if !ok {
			continue // topic gone: nothing to commit
		}
		if gc.Delete {
			if _, ok := t.Groups[gc.Group]; ok {
				delete(t.Groups, gc.Group)
				changed = true
			}
			continue
		}
		off := max(gc.Offset, t.Earliest) // retention deleted what is below
		if old, ok := t.Groups[gc.Group]; ok && old == off {
			continue
		}
		if t.Groups == nil {
			t.Groups = map[string]uint64{}
		}
		t.Groups[gc.Group] = off
		changed = true
	}
	if !changed {
		return Result{Status: NoOp}
	}
	return Result{Status: Applied}
}

// GroupOffset returns a group's committed offset in a topic.
func (f *FSM) GroupOffset(topic, group string) (uint64, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.state.Topics[topic]
	if !ok {
		return 0, false
	}
	off, ok := t.Groups[group]
	return off, ok
}

// Changed returns a channel closed at the next state change.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.changed
}

// Version counts state changes since start (not persisted).
func (f *FSM) Version() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.version
}

// State returns a deep copy of the whole state.
func (f *FSM) State() *ClusterState {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Clone()
}

// Topic returns a copy of one topic.
func (f *FSM) Topic(name string) (Topic, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.state.Topics[name]
	if !ok {
		return Topic{}, false
	}
	return t.Clone(), true
}

// Route returns the open segment of a topic and its leader without copying
// any map: the hot path calls it for every append.
func (f *FSM) Route(name string) (Route, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.state.Topics[name]
	if !ok {
		return Route{}, false
	}
	return Route{Segment: t.CurrentSegment, Leader: t.LeaderNode, Epoch: t.Epoch, SealedOffset: t.SealedOffset}, true
}

// SegmentInfo reports where segment seg of a topic lives and, when sealed,
// its final count.
func (f *FSM) SegmentInfo(name string, seg uint64) (holder uint64, count uint64, sealed bool, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, found := f.state.Topics[name]
	if !found {
		return 0, 0, false, false
	}
	holder, ok = t.SegmentLeaders[seg]
	count, sealed = t.SealedSegments[seg]
	return holder, count, sealed, ok
}

// SegmentReplicas returns the replica set of segment seg of a topic
// (leader first; the leader alone for an unreplicated segment), its ack
// quorum, and false when the segment does not exist.
func (f *FSM) SegmentReplicas(name string, seg uint64) ([]uint64, int, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.state.Topics[name]
	if !ok {
		return nil, 0, false
	}
	if _, ok := t.SegmentLeaders[seg]; !ok {
		return nil, 0, false
	}
	return slices.Clone(t.SegmentReplicas(seg)), t.SegmentAckQuorum(seg), true
}

// TopicNames returns the sorted names of all topics.
func (f *FSM) TopicNames() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	names := make([]string, 0, len(f.state.Topics))
	for n := range f.state.Topics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Routes returns the routing view of every topic.
func (f *FSM) Routes() map[string]Route {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[string]Route, len(f.state.Topics))
	for n, t := range f.state.Topics {
		out[n] = Route{Segment: t.CurrentSegment, Leader: t.LeaderNode, Epoch: t.Epoch, SealedOffset: t.SealedOffset}
	}
	return out
}

// EachTopic calls fn for every topic, in no order, under the FSM's read
// lock and without copying: fn must not keep t or call the FSM.
func (f *FSM) EachTopic(fn func(t *Topic)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, t := range f.state.Topics {
		fn(t)
	}
}

// TopicCount returns the number of topics.
func (f *FSM) TopicCount() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.state.Topics)
}

// Node returns one node's addresses.
func (f *FSM) Node(id uint64) (Node, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n, ok := f.state.Nodes[id]
	return n, ok
}

// Nodes returns every known node, ordered by id.
func (f *FSM) Nodes() []Node {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Node, 0, len(f.state.Nodes))
	for _, n := range f.state.Nodes {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b Node) int { return cmpU64(a.ID, b.ID) })
	return out
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Snapshot implements raft.FSM: it captures a deep copy now and serialises
// it later, off the FSM goroutine.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{state: f.State()}, nil
}

// Restore implements raft.FSM: it replaces the whole state.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s := NewClusterState()
	dec := json.NewDecoder(io.LimitReader(rc, 1<<30))
	if err := dec.Decode(s); err != nil {
		return fmt.Errorf("metadata: restore snapshot: %w", err)
	}
	if s.Topics == nil {
		s.Topics = map[string]*Topic{}
	}
	if s.Nodes == nil {
		s.Nodes = map[uint64]Node{}
	}
	for name, t := range s.Topics {
		if t == nil {
			return fmt.Errorf("metadata: restore snapshot: topic %q is null: %w", name, ErrInvalidCommand)
		}
		if t.SealedSegments == nil {
			t.SealedSegments = map[uint64]uint64{}
		}
		if t.SegmentLeaders == nil {
			t.SegmentLeaders = map[uint64]uint64{}
		}
	}
	f.mu.Lock()
	f.state = s
	f.changes.reset(f.version + 1)
	f.notifyLocked()
	f.mu.Unlock()
	return nil
}

type snapshot struct{ state *ClusterState }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.state); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("metadata: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

// Timed reports whether segment seg of a topic holds timed records.
func (f *FSM) Timed(topic string, seg uint64) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.state.Topics[topic]
	return ok && t.Timed(seg)
}

// Groups lists the committed group offsets of a topic, or of every topic
// when topic is "".
func (f *FSM) Groups(topic string) []GroupCommit {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []GroupCommit
	for name, t := range f.state.Topics {
		if topic != "" && name != topic {
			continue
		}
		for g, off := range t.Groups {
			out = append(out, GroupCommit{Group: g, Topic: name, Offset: off})
		}
	}
	return out
}

// View runs f on the live topic under the state's read lock, without a
// copy: f must not keep t or anything it holds, nor change it, nor call
// back into the FSM. It reports whether the topic exists.
func (f *FSM) View(topic string, fn func(t *Topic)) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.state.Topics[topic]
	if ok {
		fn(t)
	}
	return ok
}

// DeletedBefore returns, for a deleted topic name, the first segment
// number a topic of that name may use again (0: not deleted).
func (f *FSM) DeletedBefore(topic string) uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Deleted[topic]
}

// Skipped returns how many entries retention deleted before a group (or
// the shared cursor, group "") of a topic read them.
func (f *FSM) Skipped(topic, group string) uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if t, ok := f.state.Topics[topic]; ok {
		return t.Skipped[group]
	}
	return 0
}
