package metadata

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Kind identifies a command. Its value is the first byte of an encoded
// command; values are part of the Raft log format and must never change.
type Kind uint8

const (
	KindCreateTopic   Kind = 1
	KindRollover      Kind = 2
	KindUpsertNode    Kind = 3
	KindRemoveNode    Kind = 4
	KindCommitCursors Kind = 5
	KindSetReplicas   Kind = 6
	KindCommitGroups  Kind = 7
	KindAlterTopic    Kind = 8
	KindDeleteSegs    Kind = 9
	KindDeleteTopic   Kind = 10
	KindCreateTopics  Kind = 11
	// KindAllocProducerIDs: AllocProducerIDs (producers.go).
	KindAllocProducerIDs Kind = 12
)

func (k Kind) String() string {
	switch k {
	case KindCreateTopic:
		return "create_topic"
	case KindRollover:
		return "rollover"
	case KindUpsertNode:
		return "upsert_node"
	case KindRemoveNode:
		return "remove_node"
	case KindCommitCursors:
		return "commit_cursors"
	case KindSetReplicas:
		return "set_replicas"
	case KindCommitGroups:
		return "commit_groups"
	case KindAlterTopic:
		return "alter_topic"
	case KindDeleteSegs:
		return "delete_segments"
	case KindDeleteTopic:
		return "delete_topic"
	case KindAllocProducerIDs:
		return "alloc_producer_ids"
	case KindCreateTopics:
		return "create_topics"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MaxCommandBytes bounds an encoded command, checked before decoding.
const MaxCommandBytes = 4 << 20

// ErrInvalidCommand reports a command that cannot be decoded or violates
// the rules of Apply.
var ErrInvalidCommand = errors.New("invalid metadata command")

// ErrUnknownTopic reports a command on a topic that does not exist.
var ErrUnknownTopic = errors.New("unknown topic")

// CreateTopic creates a topic with its first segment open on Leader.
type CreateTopic struct {
	Topic  string `json:"topic"`
	Leader uint64 `json:"leader"`
	// Replicas is the replica set of the first segment (leader first);
	// empty means the leader only.
	Replicas []uint64 `json:"replicas,omitempty"`
	// ReplicationFactor and AckQuorum are the topic's replication settings
	// (see Topic).
	ReplicationFactor int `json:"replication_factor,omitempty"`
	AckQuorum         int `json:"ack_quorum,omitempty"`
	// Timed: the proposer writes timed records (package record). Commands
	// from older versions lack it, and a topic they created holds bare
	// payloads until a Timed rollover.
	Timed bool `json:"timed,omitempty"`
	// OpenedMs is the proposer's clock when it opened the segment (Unix
	// ms; segments roll over by age from it).
	OpenedMs int64 `json:"opened_ms,omitempty"`
}

// SetReplicas replaces the replica set of a sealed segment after its data
// was copied to the new members (re-replication). The first member stays
// the segment's leader of record only if it is still in the set.
type SetReplicas struct {
	Topic    string   `json:"topic"`
	Segment  uint64   `json:"segment"`
	Replicas []uint64 `json:"replicas"`
}

// Rollover seals Segment of Topic with exactly Count entries and opens
// Segment+1 led by NextLeader.
type Rollover struct {
	Topic        string   `json:"topic"`
	Segment      uint64   `json:"segment"`
	Count        uint64   `json:"count"`
	NextLeader   uint64   `json:"next_leader"`
	NextReplicas []uint64 `json:"next_replicas,omitempty"`
	// Timed: the segment opened holds timed records (see CreateTopic).
	Timed bool `json:"timed,omitempty"`
	// OpenedMs: see CreateTopic.
	OpenedMs int64 `json:"opened_ms,omitempty"`
}

// UpsertNode records (or replaces) a node's addresses.
type UpsertNode struct {
	Node Node `json:"node"`
}

// RemoveNode forgets a node's addresses.
type RemoveNode struct {
	ID uint64 `json:"id"`
}

// CursorCommit is one topic's new cursor position.
type CursorCommit struct {
	Topic  string `json:"topic"`
	Cursor Cursor `json:"cursor"`
}

// CommitCursors advances the shared cursors of several topics at once
// (cursor commits are batched). A position behind the committed one is
// ignored, so commits are monotonic.
type CommitCursors struct {
	Cursors []CursorCommit `json:"cursors"`
}

// GroupCommit is one group's committed offset in one topic.
type GroupCommit struct {
	Group  string `json:"group"`
	Topic  string `json:"topic"`
	Offset uint64 `json:"offset"`
	// Delete removes the group's offset in the topic instead (Kafka's
	// OffsetDelete and DeleteGroups).
	Delete bool `json:"delete,omitempty"`
}

// CommitGroups sets the committed offsets of consumer groups (batched).
// An offset may move back (an explicit COMMIT rewinds a group); the group
// coordinator serialises its commits, so the last one applied wins.
type CommitGroups struct {
	Commits []GroupCommit `json:"commits"`
}

// AlterTopic changes the limits it names (nil: unchanged; 0: no limit).
type AlterTopic struct {
	Topic      string  `json:"topic"`
	MaxAgeMs   *int64  `json:"max_age_ms,omitempty"`
	MaxBytes   *uint64 `json:"max_bytes,omitempty"`
	MaxEntries *uint64 `json:"max_entries,omitempty"`
}

// DeleteSegments drops the sealed segments of Topic from its base up to
// and including Through (retention). Every replica deletes their files
// once it applied it.
type DeleteSegments struct {
	Topic   string `json:"topic"`
	Through uint64 `json:"through"`
}

// DeleteTopic removes a topic: its data on every replica, its metadata,
// its cursor and its groups.
type DeleteTopic struct {
	Topic string `json:"topic"`
}

// CreateTopics creates several topics in one entry (the Raft leader
// batches concurrent creations); each is applied as a CreateTopic.
type CreateTopics struct {
	Topics []CreateTopic `json:"topics"`
}

// Command is one of the command types above.
type Command interface {
	Kind() Kind
}

func (CreateTopic) Kind() Kind    { return KindCreateTopic }
func (Rollover) Kind() Kind       { return KindRollover }
func (UpsertNode) Kind() Kind     { return KindUpsertNode }
func (RemoveNode) Kind() Kind     { return KindRemoveNode }
func (CommitCursors) Kind() Kind  { return KindCommitCursors }
func (SetReplicas) Kind() Kind    { return KindSetReplicas }
func (CommitGroups) Kind() Kind   { return KindCommitGroups }
func (AlterTopic) Kind() Kind     { return KindAlterTopic }
func (DeleteSegments) Kind() Kind { return KindDeleteSegs }
func (DeleteTopic) Kind() Kind    { return KindDeleteTopic }
func (CreateTopics) Kind() Kind   { return KindCreateTopics }

// Encode renders a command as one kind byte followed by its JSON body.
// JSON keeps the log readable and forward compatible (unknown fields are
// ignored); commands are small and rare next to data appends.
func Encode(c Command) ([]byte, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("metadata: encode %v: %w", c.Kind(), err)
	}
	out := make([]byte, 0, len(body)+1)
	out = append(out, byte(c.Kind()))
	return append(out, body...), nil
}

// Decode parses an encoded command. It never panics on arbitrary input.
func Decode(b []byte) (Command, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("metadata: command of %d bytes: %w", len(b), ErrInvalidCommand)
	}
	if len(b) > MaxCommandBytes {
		return nil, fmt.Errorf("metadata: command of %d bytes exceeds %d: %w", len(b), MaxCommandBytes, ErrInvalidCommand)
	}
	var (
		c   Command
		err error
	)
	body := b[1:]
	switch Kind(b[0]) {
	case KindCreateTopic:
		c, err = decodeJSON[CreateTopic](body)
	case KindRollover:
		c, err = decodeJSON[Rollover](body)
	case KindUpsertNode:
		c, err = decodeJSON[UpsertNode](body)
	case KindRemoveNode:
		c, err = decodeJSON[RemoveNode](body)
	case KindCommitCursors:
		c, err = decodeJSON[CommitCursors](body)
	case KindSetReplicas:
		c, err = decodeJSON[SetReplicas](body)
	case KindCommitGroups:
		c, err = decodeJSON[CommitGroups](body)
	case KindAlterTopic:
		c, err = decodeJSON[AlterTopic](body)
	case KindDeleteSegs:
		c, err = decodeJSON[DeleteSegments](body)
	case KindDeleteTopic:
		c, err = decodeJSON[DeleteTopic](body)
	case KindCreateTopics:
		c, err = decodeJSON[CreateTopics](body)
	case KindAllocProducerIDs:
		c, err = decodeJSON[AllocProducerIDs](body)
	default:
		return nil, fmt.Errorf("metadata: unknown command kind %d: %w", b[0], ErrInvalidCommand)
	}
	if err != nil {
		return nil, fmt.Errorf("metadata: decode %v: %v: %w", Kind(b[0]), err, ErrInvalidCommand)
	}
	return c, nil
}

// decodeJSON decodes body into a T and returns it as a Command value (not a
// pointer, as Apply expects).
func decodeJSON[T Command](body []byte) (Command, error) {
	var v T
	err := json.Unmarshal(body, &v)
	return v, err
}

// Any reports whether the command changes anything.
func (c AlterTopic) Any() bool { return c.MaxAgeMs != nil || c.MaxBytes != nil || c.MaxEntries != nil }
