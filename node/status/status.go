// Package status owns the documents a node answers about itself and its
// topics: METRICS, STATE and TOPICS. Field names and shapes are a contract
// (DESIGN.md §5 and the seed's monitoring guide): the node builds these
// types, and clients, walrus-cli, the tests and the monitoring example
// decode into the same types instead of declaring the schema again. It
// imports only the standard library, so clients stay free of Raft.
package status

// Cursor is a position in a topic: the next entry to hand out.
type Cursor struct {
	Segment uint64 `json:"segment"`
	Offset  uint64 `json:"offset"`
}

// Metrics is the METRICS document.
type Metrics struct {
	ID               uint64                 `json:"id"`
	State            string                 `json:"state"`
	CurrentTerm      uint64                 `json:"current_term"`
	Vote             Vote                   `json:"vote"`
	LastLogIndex     uint64                 `json:"last_log_index"`
	LastApplied      uint64                 `json:"last_applied"`
	CurrentLeader    *uint64                `json:"current_leader"`
	MembershipConfig MembershipConfig       `json:"membership_config"`
	Snapshot         Snapshot               `json:"snapshot"`
	Replication      map[string]Replication `json:"replication,omitempty"`
	// UnderReplicated (extension) counts segments with a replica that is
	// down or no longer a voter; UnderReplicatedSegments lists them.
	UnderReplicated         int               `json:"under_replicated"`
	UnderReplicatedSegments []UnderReplicated `json:"under_replicated_segments,omitempty"`
}

// Vote is METRICS.vote.
type Vote struct {
	Term      uint64 `json:"term"`
	NodeID    uint64 `json:"node_id"`
	Committed bool   `json:"committed"`
}

// MembershipConfig is METRICS.membership_config.
type MembershipConfig struct {
	Nodes      []uint64   `json:"nodes"`
	Voters     []uint64   `json:"voters"`
	Learners   []uint64   `json:"learners"`
	Membership Membership `json:"membership"`
}

// Membership is METRICS.membership_config.membership.
type Membership struct {
	Configs [][]uint64 `json:"configs"`
	// Nodes maps a node id (decimal) to its Raft address.
	Nodes map[string]string `json:"nodes"`
}

// Snapshot is METRICS.snapshot.
type Snapshot struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
}

// Replication is one follower's entry of METRICS.replication (leader only).
type Replication struct {
	MatchIndex uint64 `json:"match_index"`
	NextIndex  uint64 `json:"next_index"`
	Index      uint64 `json:"index"`
}

// Leader reports the current leader, if known.
func (m Metrics) Leader() (uint64, bool) {
	if m.CurrentLeader == nil {
		return 0, false
	}
	return *m.CurrentLeader, true
}

// UnderReplicated is one segment with fewer live replicas than its set.
type UnderReplicated struct {
	Topic    string   `json:"topic"`
	Segment  uint64   `json:"segment"`
	Replicas []uint64 `json:"replicas"`
	Missing  []uint64 `json:"missing"`
	Sealed   bool     `json:"sealed"`
	// Short: the set has fewer members than the topic's factor although
	// enough voters exist now (e.g. created before the others joined).
	Short bool `json:"short,omitempty"`
}

// State is the STATE document: the seed's five fields, then extras.
type State struct {
	Topic          string              `json:"topic"`
	CurrentSegment uint64              `json:"current_segment"`
	LeaderNode     uint64              `json:"leader_node"`
	SealedSegments map[string]uint64   `json:"sealed_segments"`
	SegmentLeaders map[string]uint64   `json:"segment_leaders"`
	SealedOffset   uint64              `json:"sealed_offset"`
	Epoch          uint64              `json:"epoch"`
	Cursor         Cursor              `json:"cursor"`
	Replicas       map[string][]uint64 `json:"replicas,omitempty"`
	// Replication extras: the topic's settings and the segments with a
	// replica down or gone (the answering node's view).
	ReplicationFactor int                 `json:"replication_factor"`
	AckQuorum         int                 `json:"ack_quorum"`
	UnderReplicated   map[string][]uint64 `json:"under_replicated,omitempty"`
	// Log extras: the first retained offset, the retention limits and
	// the entries the shared cursor skipped because retention deleted them.
	Earliest  uint64    `json:"earliest"`
	Retention Retention `json:"retention"`
	Skipped   uint64    `json:"skipped,omitempty"`
}

// Retention is a topic's limits; 0 means no limit.
type Retention struct {
	MaxAgeMs   int64  `json:"max_age_ms"`
	MaxBytes   uint64 `json:"max_bytes"`
	MaxEntries uint64 `json:"max_entries"`
}

// TopicSummary is one element of the TOPICS array.
type TopicSummary struct {
	Topic          string `json:"topic"`
	CurrentSegment uint64 `json:"current_segment"`
	LeaderNode     uint64 `json:"leader_node"`
	SealedSegments int    `json:"sealed_segments"`
	Entries        uint64 `json:"entries"`
	// Earliest is the first retained offset; Entries counts from it.
	Earliest  uint64    `json:"earliest"`
	Retention Retention `json:"retention"`
}
