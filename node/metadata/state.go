package metadata

import (
	"maps"
	"slices"
)

// FirstSegment is the id of the first segment of every topic (as in the
// original: segment ids start at 1).
const FirstSegment uint64 = 1

// Cursor is a position in a topic: the next entry to deliver is at Offset in
// Segment. A cursor at (S, count of S) for a sealed S is equivalent to
// (S+1, 0).
type Cursor struct {
	Segment uint64 `json:"segment"`
	Offset  uint64 `json:"offset"`
}

// Less orders cursors by segment, then offset.
func (c Cursor) Less(o Cursor) bool {
	if c.Segment != o.Segment {
		return c.Segment < o.Segment
	}
	return c.Offset < o.Offset
}

// Topic is the replicated metadata of one topic.
type Topic struct {
	Name string `json:"name"`
	// CurrentSegment is the open segment, the only one that accepts appends.
	CurrentSegment uint64 `json:"current_segment"`
	// LeaderNode leads CurrentSegment (holds its write lease).
	LeaderNode uint64 `json:"leader_node"`
	// Epoch of CurrentSegment's leadership. It is 1: an open segment's
	// leader is never replaced (a failover seals the segment and opens the
	// next one elsewhere), and a recovery fences the replicas at Epoch+1.
	// Kept because STATE reports it.
	Epoch uint64 `json:"epoch"`
	// OpenedAt is the Raft index that opened CurrentSegment (0: unknown,
	// e.g. state from before the field existed). A segment leader that
	// restarted after it may have lost entries and checks its replicas
	// before it appends.
	OpenedAt uint64 `json:"opened_at,omitempty"`
	// OpenedAtMs is when CurrentSegment was opened, by the proposer's
	// clock (0: unknown).
	OpenedAtMs int64 `json:"opened_at_ms,omitempty"`
	// SealedSegments maps a sealed segment to its final entry count.
	SealedSegments map[uint64]uint64 `json:"sealed_segments"`
	// SegmentLeaders maps every segment (sealed and open) to its leader.
	SegmentLeaders map[uint64]uint64 `json:"segment_leaders"`
	// Replicas maps a segment to its replica set, leader first. A segment
	// without an entry is held by its leader only (replication factor 1).
	Replicas map[uint64][]uint64 `json:"replicas,omitempty"`
	// SealedOffset is the sum of the counts of all sealed segments: the
	// topic-wide offset of entry 0 of CurrentSegment.
	SealedOffset uint64 `json:"sealed_offset"`
	// Cursor is the committed position of the shared read cursor.
	Cursor Cursor `json:"cursor"`
	// ReplicationFactor is the topic's replica set size target (capped at
	// the live voters when a segment opens); 0 = 1 (topics created before
	// replication).
	ReplicationFactor int `json:"replication_factor,omitempty"`
	// AckQuorum is how many replicas (leader included) must store an entry
	// before a PUT is acknowledged; 0 = a majority of the segment's set.
	AckQuorum int `json:"ack_quorum,omitempty"`
	// TimedFrom is the first segment whose entries are timed records
	// (package record); earlier ones hold bare payloads written before
	// records existed. 0: none yet (a topic from an older version: its
	// next segment starts them).
	TimedFrom uint64 `json:"timed_from,omitempty"`
	// Groups maps a consumer group to its committed offset in the topic:
	// the next offset the group reads.
	Groups map[string]uint64 `json:"groups,omitempty"`
	// Base is the first retained segment (0: FirstSegment, nothing was
	// deleted); Earliest is the topic-wide offset of its entry 0.
	// Segments below Base were deleted by retention and left nothing else
	// in the metadata.
	Base     uint64 `json:"base,omitempty"`
	Earliest uint64 `json:"earliest,omitempty"`
	// Incarnation is the Raft index that created the topic: a topic
	// deleted and created again under the same name is another one.
	Incarnation uint64 `json:"incarnation,omitempty"`
	// Retention are the limits set on the topic itself; a limit not set
	// follows the cluster's default (the Raft leader's configuration).
	Retention Retention `json:"retention,omitzero"`
	// Skipped counts entries the shared cursor (key "") and each group
	// skipped because retention deleted them before they were read.
	Skipped map[string]uint64 `json:"skipped,omitempty"`
}

// Limits are retention limits; 0 means no limit.
type Limits struct {
	MaxAgeMs   int64  `json:"max_age_ms"`
	MaxBytes   uint64 `json:"max_bytes"`
	MaxEntries uint64 `json:"max_entries"`
}

// Limited reports whether any limit is set.
func (l Limits) Limited() bool { return l.MaxAgeMs > 0 || l.MaxBytes > 0 || l.MaxEntries > 0 }

// Retention are the limits a topic sets itself: nil follows the default,
// 0 is "no limit" whatever the default.
type Retention struct {
	MaxAgeMs   *int64  `json:"max_age_ms,omitempty"`
	MaxBytes   *uint64 `json:"max_bytes,omitempty"`
	MaxEntries *uint64 `json:"max_entries,omitempty"`
}

// Effective returns the limits in force given the defaults.
func (r Retention) Effective(def Limits) Limits {
	if r.MaxAgeMs != nil {
		def.MaxAgeMs = *r.MaxAgeMs
	}
	if r.MaxBytes != nil {
		def.MaxBytes = *r.MaxBytes
	}
	if r.MaxEntries != nil {
		def.MaxEntries = *r.MaxEntries
	}
	return def
}

func (r Retention) clone() Retention {
	c := Retention{}
	if r.MaxAgeMs != nil {
		v := *r.MaxAgeMs
		c.MaxAgeMs = &v
	}
	if r.MaxBytes != nil {
		v := *r.MaxBytes
		c.MaxBytes = &v
	}
	if r.MaxEntries != nil {
		v := *r.MaxEntries
		c.MaxEntries = &v
	}
	return c
}

// BaseSegment returns the first retained segment.
func (t *Topic) BaseSegment() uint64 { return max(t.Base, FirstSegment) }

// Timed reports whether segment seg holds timed records.
func (t *Topic) Timed(seg uint64) bool { return t.TimedFrom != 0 && seg >= t.TimedFrom }

// SegmentStart returns the topic-wide offset of entry 0 of segment seg and
// whether seg exists. Segments are numbered consecutively from FirstSegment.
func (t *Topic) SegmentStart(seg uint64) (uint64, bool) {
	if seg < t.BaseSegment() || seg > t.CurrentSegment {
		return 0, false
	}
	if seg == t.CurrentSegment {
		return t.SealedOffset, true
	}
	start := t.Earliest
	for s := t.BaseSegment(); s < seg; s++ {
		start += t.SealedSegments[s]
	}
	return start, true
}

// Locate returns the segment holding topic-wide offset off and the offset
// inside it. An offset at or past the open segment's start is in the open
// segment (whether it exists yet is for its leader to say). An offset
// below Earliest is reported in the base segment at offset 0; callers
// check Earliest first.
func (t *Topic) Locate(off uint64) (seg, segOff uint64) {
	if off < t.Earliest {
		return t.BaseSegment(), 0
	}
	if off >= t.SealedOffset {
		return t.CurrentSegment, off - t.SealedOffset
	}
	start := t.Earliest
	for s := t.BaseSegment(); s < t.CurrentSegment; s++ {
		n := t.SealedSegments[s]
		if off < start+n {
			return s, off - start
		}
		start += n
	}
	return t.CurrentSegment, off - t.SealedOffset
}

// SegmentReplicas returns the replica set of seg (leader first); a segment
// without a recorded set is held by its leader alone.
func (t *Topic) SegmentReplicas(seg uint64) []uint64 {
	if r := t.Replicas[seg]; len(r) > 0 {
		return r
	}
	if l, ok := t.SegmentLeaders[seg]; ok {
		return []uint64{l}
	}
	return nil
}

// SegmentAckQuorum is the ack quorum of seg: the topic's AckQuorum capped at
// the set size, or a majority of the set when AckQuorum is 0.
func (t *Topic) SegmentAckQuorum(seg uint64) int {
	return EffectiveAckQuorum(t.AckQuorum, len(t.SegmentReplicas(seg)))
}

// EffectiveAckQuorum resolves a configured ack quorum (0 = majority)
// against a replica set of size n.
func EffectiveAckQuorum(ack, n int) int {
	if n <= 0 {
		return 1
	}
	if ack <= 0 {
		return n/2 + 1
	}
	return min(ack, n)
}

// Clone returns a deep copy.
func (t *Topic) Clone() Topic {
	c := *t
	c.Groups = maps.Clone(t.Groups)
	c.Skipped = maps.Clone(t.Skipped)
	c.Retention = t.Retention.clone()
	c.SealedSegments = maps.Clone(t.SealedSegments)
	c.SegmentLeaders = maps.Clone(t.SegmentLeaders)
	if c.SealedSegments == nil {
		c.SealedSegments = map[uint64]uint64{}
	}
	if c.SegmentLeaders == nil {
		c.SegmentLeaders = map[uint64]uint64{}
	}
	if t.Replicas != nil {
		c.Replicas = make(map[uint64][]uint64, len(t.Replicas))
		for k, v := range t.Replicas {
			c.Replicas[k] = slices.Clone(v)
		}
	}
	return c
}

// SegmentHolder returns the node that holds segment seg (its leader), and
// false when seg is not a segment of the topic.
func (t *Topic) SegmentHolder(seg uint64) (uint64, bool) {
	n, ok := t.SegmentLeaders[seg]
	return n, ok
}

// Node is the address book entry of one cluster member.
type Node struct {
	ID uint64 `json:"id"`
	// RaftAddr is host:port of the Raft transport (and of the internal RPC,
	// which shares the port through a connection multiplexer).
	RaftAddr string `json:"raft_addr"`
	// RPCAddr is host:port of the internal node-to-node RPC.
	RPCAddr string `json:"rpc_addr"`
	// ClientAddr is host:port of the client protocol listener.
	ClientAddr string `json:"client_addr"`
	// KafkaAddr is host:port of the Kafka listener ("" = off).
	KafkaAddr string `json:"kafka_addr,omitempty"`
}

// ClusterState is the whole replicated state machine.
type ClusterState struct {
	Topics map[string]*Topic `json:"topics"`
	Nodes  map[uint64]Node   `json:"nodes"`
	// Deleted maps a deleted topic's name to the first segment number a
	// topic of that name may use again, so a re-created topic never
	// reuses the segment ids of files a replica that was down may still
	// hold (one small entry per deleted name).
	Deleted map[string]uint64 `json:"deleted,omitempty"`
	// NextProducerID is the first Kafka producer id not yet handed out;
	// ProducerBlocks the first id of each node's current block
	// (AllocProducerIDs).
	NextProducerID uint64            `json:"next_producer_id,omitempty"`
	ProducerBlocks map[uint64]uint64 `json:"producer_blocks,omitempty"`
}

// NewClusterState returns an empty state.
func NewClusterState() *ClusterState {
	return &ClusterState{Topics: map[string]*Topic{}, Nodes: map[uint64]Node{}}
}

// Clone returns a deep copy.
func (s *ClusterState) Clone() *ClusterState {
	c := NewClusterState()
	for k, v := range s.Topics {
		t := v.Clone()
		c.Topics[k] = &t
	}
	maps.Copy(c.Nodes, s.Nodes)
	c.Deleted = maps.Clone(s.Deleted)
	c.NextProducerID = s.NextProducerID
	c.ProducerBlocks = maps.Clone(s.ProducerBlocks)
	return c
}

// Route is the cheap-to-copy routing view of a topic used on the hot path.
type Route struct {
	Segment uint64
	Leader  uint64
	Epoch   uint64
	// SealedOffset is the topic-wide offset of entry 0 of Segment.
	SealedOffset uint64
}
