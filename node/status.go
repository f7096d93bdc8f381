package node

import (
	"encoding/json"
	"sort"
	"strconv"

	"github.com/hashicorp/raft"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
)

// The METRICS JSON (DESIGN.md §5; field names and shapes are a contract).
type metricsJSON struct {
	ID               uint64                     `json:"id"`
	State            string                     `json:"state"`
	CurrentTerm      uint64                     `json:"current_term"`
	Vote             voteJSON                   `json:"vote"`
	LastLogIndex     uint64                     `json:"last_log_index"`
	LastApplied      uint64                     `json:"last_applied"`
	CurrentLeader    *uint64                    `json:"current_leader"`
	MembershipConfig membershipJSON             `json:"membership_config"`
	Snapshot         snapshotJSON               `json:"snapshot"`
	Replication      map[string]replicationJSON `json:"replication,omitempty"`
	// UnderReplicated (extension, issue 4) counts segments with a replica
	// that is down or no longer a voter; UnderReplicatedSegments lists them.
	UnderReplicated         int               `json:"under_replicated"`
	UnderReplicatedSegments []underReplicated `json:"under_replicated_segments,omitempty"`
}

type voteJSON struct {
	Term      uint64 `json:"term"`
	NodeID    uint64 `json:"node_id"`
	Committed bool   `json:"committed"`
}

type membershipJSON struct {
	Nodes      []uint64       `json:"nodes"`
	Voters     []uint64       `json:"voters"`
	Learners   []uint64       `json:"learners"`
	Membership membershipInfo `json:"membership"`
}

type membershipInfo struct {
	Configs [][]uint64        `json:"configs"`
	Nodes   map[string]string `json:"nodes"`
}

type snapshotJSON struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
}

type replicationJSON struct {
	MatchIndex uint64 `json:"match_index"`
	NextIndex  uint64 `json:"next_index"`
	Index      uint64 `json:"index"`
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "Leader"
	case raft.Candidate:
		return "Candidate"
	}
	// Shutdown is reported as Follower: the seed allows three values.
	return "Follower"
}

func u64(s string) uint64 {
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}

// raftStats is the single source of both METRICS and the Prometheus raft
// collector.
func (n *Node) raftStats() metrics.RaftStats {
	r := n.cons.Raft()
	st := r.Stats()
	leaderID, _ := n.cons.Leader()
	s := metrics.RaftStats{
		State:         r.State().String(),
		Term:          u64(st["term"]),
		LastLogIndex:  u64(st["last_log_index"]),
		AppliedIndex:  u64(st["applied_index"]),
		CommitIndex:   u64(st["commit_index"]),
		LeaderID:      leaderID,
		HasLeader:     leaderID != 0,
		SnapshotIndex: u64(st["last_snapshot_index"]),
		SnapshotTerm:  u64(st["last_snapshot_term"]),
		Followers:     map[uint64]metrics.Follower{},
		Voters:        []uint64{},
		Learners:      []uint64{},
	}
	if m, err := n.cons.Membership(); err == nil {
		s.Voters, s.Learners = m.Voters, m.Learners
		if r.State() == raft.Leader {
			peers := n.peers.snapshot()
			for _, id := range m.Nodes() {
				if id == n.id {
					continue
				}
				p := peers[id] // zero until the first heartbeat
				s.Followers[id] = metrics.Follower{MatchIndex: p.LastIndex, NextIndex: p.LastIndex + 1}
			}
		}
	}
	return s
}

func (n *Node) metricsJSON() ([]byte, error) {
	s := n.raftStats()
	out := metricsJSON{
		ID:           n.id,
		State:        stateName(n.cons.Raft().State()),
		CurrentTerm:  s.Term,
		LastLogIndex: s.LastLogIndex,
		LastApplied:  s.AppliedIndex,
		Snapshot:     snapshotJSON{Index: s.SnapshotIndex, Term: s.SnapshotTerm},
	}
	if s.HasLeader {
		l := s.LeaderID
		out.CurrentLeader = &l
		out.Vote = voteJSON{Term: s.Term, NodeID: l, Committed: true}
	} else {
		term, cand := n.cons.LastVote()
		out.Vote = voteJSON{Term: term}
		if m, err := n.cons.Membership(); err == nil {
			for id, a := range m.Addrs {
				if a == cand {
					out.Vote.NodeID = id
				}
			}
		}
	}
	m, err := n.cons.Membership()
	if err != nil {
		return nil, err
	}
	out.MembershipConfig = membershipJSON{
		Nodes:    m.Nodes(),
		Voters:   m.Voters,
		Learners: m.Learners,
		Membership: membershipInfo{
			Configs: [][]uint64{m.Voters},
			Nodes:   map[string]string{},
		},
	}
	for id, a := range m.Addrs {
		out.MembershipConfig.Membership.Nodes[strconv.FormatUint(id, 10)] = a
	}
	out.UnderReplicatedSegments = n.underReplicatedSegments()
	out.UnderReplicated = len(out.UnderReplicatedSegments)
	if out.State == "Leader" {
		out.Replication = map[string]replicationJSON{}
		for id, f := range s.Followers {
			out.Replication[strconv.FormatUint(id, 10)] = replicationJSON{MatchIndex: f.MatchIndex, NextIndex: f.NextIndex, Index: f.MatchIndex}
		}
	}
	return json.Marshal(out)
}

// The STATE JSON: the seed's five fields, then extras.
type stateJSON struct {
	Topic          string              `json:"topic"`
	CurrentSegment uint64              `json:"current_segment"`
	LeaderNode     uint64              `json:"leader_node"`
	SealedSegments map[string]uint64   `json:"sealed_segments"`
	SegmentLeaders map[string]uint64   `json:"segment_leaders"`
	SealedOffset   uint64              `json:"sealed_offset"`
	Epoch          uint64              `json:"epoch"`
	Cursor         metadata.Cursor     `json:"cursor"`
	Replicas       map[string][]uint64 `json:"replicas,omitempty"`
	// Replication extras (issue 4): the topic's settings and the segments
	// with a replica down or gone (this node's view).
	ReplicationFactor int                 `json:"replication_factor"`
	AckQuorum         int                 `json:"ack_quorum"`
	UnderReplicated   map[string][]uint64 `json:"under_replicated,omitempty"`
}

func stateOf(t metadata.Topic) stateJSON {
	s := stateJSON{
		Topic:          t.Name,
		CurrentSegment: t.CurrentSegment,
		LeaderNode:     t.LeaderNode,
		SealedSegments: map[string]uint64{},
		SegmentLeaders: map[string]uint64{},
		SealedOffset:   t.SealedOffset,
		Epoch:          t.Epoch,
		Cursor:         t.Cursor,

		ReplicationFactor: topicRF(t),
		AckQuorum:         t.SegmentAckQuorum(t.CurrentSegment),
	}
	for k, v := range t.SealedSegments {
		s.SealedSegments[strconv.FormatUint(k, 10)] = v
	}
	for k, v := range t.SegmentLeaders {
		s.SegmentLeaders[strconv.FormatUint(k, 10)] = v
	}
	if len(t.Replicas) > 0 {
		s.Replicas = map[string][]uint64{}
		for k, v := range t.Replicas {
			s.Replicas[strconv.FormatUint(k, 10)] = v
		}
	}
	return s
}

// topicSummary is one element of the TOPICS extension's JSON array.
type topicSummary struct {
	Topic          string `json:"topic"`
	CurrentSegment uint64 `json:"current_segment"`
	LeaderNode     uint64 `json:"leader_node"`
	SealedSegments int    `json:"sealed_segments"`
	Entries        uint64 `json:"entries"`
}

func (n *Node) topicsJSON() ([]byte, error) {
	st := n.fsm.State()
	names := make([]string, 0, len(st.Topics))
	for name := range st.Topics {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]topicSummary, 0, len(names))
	peers := n.peers.snapshot()
	for _, name := range names {
		t := st.Topics[name]
		entries := t.SealedOffset
		// The open segment's count: exact when it is led here, else from
		// its leader's latest heartbeat (at most ~250 ms old), so a dead
		// node cannot stall the listing.
		if t.LeaderNode == n.id {
			if c, err := n.segmentCountOf(name, t.CurrentSegment); err == nil {
				entries += c
			}
		} else {
			entries += peers[t.LeaderNode].Open[segKey{name, t.CurrentSegment}]
		}
		out = append(out, topicSummary{Topic: name, CurrentSegment: t.CurrentSegment, LeaderNode: t.LeaderNode, SealedSegments: len(t.SealedSegments), Entries: entries})
	}
	return json.Marshal(out)
}

func (n *Node) clusterStats() metrics.ClusterStats {
	st := n.fsm.State()
	out := metrics.ClusterStats{Topics: make([]metrics.TopicStats, 0, len(st.Topics))}
	for name, t := range st.Topics {
		out.Topics = append(out.Topics, metrics.TopicStats{
			Name:           name,
			CurrentSegment: t.CurrentSegment,
			LeaderNode:     t.LeaderNode,
			SealedSegments: len(t.SealedSegments),
			SealedEntries:  t.SealedOffset,
			SegmentLeaders: t.SegmentLeaders,
		})
	}
	return out
}
