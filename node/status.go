package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/hashicorp/raft"

	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/statedoc"
	"github.com/walrus-go/walrus/node/status"
)

func jsonReply(v any) protocol.Reply {
	b, err := json.Marshal(v)
	if err != nil {
		return protocol.ErrReply(fmt.Errorf("node: encode json: %w", err))
	}
	return protocol.Raw(b)
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
	p := n.parts
	r := p.cons.Raft()
	st := r.Stats()
	leaderID, _ := p.cons.Leader()
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
	ss := p.cons.SnapshotStats()
	s.SnapshotBytes, s.SnapshotPersist, s.SnapshotRestore = ss.Bytes, ss.PersistDuration, ss.RestoreDuration
	if m, err := p.cons.Membership(); err == nil {
		s.Voters, s.Learners = m.Voters, m.Learners
		if r.State() == raft.Leader {
			for _, id := range m.Nodes() {
				if id == p.self {
					continue
				}
				last, _ := p.cluster.Peer(id) // zero until the first heartbeat
				s.Followers[id] = metrics.Follower{MatchIndex: last.LastIndex, NextIndex: last.LastIndex + 1}
			}
		}
	}
	return s
}

// metricsDoc builds the METRICS document (DESIGN.md §5).
func (n *Node) metricsDoc() (status.Metrics, error) {
	p := n.parts
	s := n.raftStats()
	out := status.Metrics{
		ID:           p.self,
		State:        stateName(p.cons.Raft().State()),
		CurrentTerm:  s.Term,
		LastLogIndex: s.LastLogIndex,
		LastApplied:  s.AppliedIndex,
		Snapshot:     status.Snapshot{Index: s.SnapshotIndex, Term: s.SnapshotTerm},
	}
	m, err := p.cons.Membership()
	if err != nil {
		return status.Metrics{}, err
	}
	if s.HasLeader {
		l := s.LeaderID
		out.CurrentLeader = &l
		out.Vote = status.Vote{Term: s.Term, NodeID: l, Committed: true}
	} else {
		term, cand := p.cons.LastVote()
		out.Vote = status.Vote{Term: term}
		for id, a := range m.Addrs {
			if a == cand {
				out.Vote.NodeID = id
			}
		}
	}
	out.MembershipConfig = status.MembershipConfig{
		Nodes:    m.Nodes(),
		Voters:   m.Voters,
		Learners: m.Learners,
		Membership: status.Membership{
			Configs: [][]uint64{m.Voters},
			Nodes:   make(map[string]string, len(m.Addrs)),
		},
	}
	for id, a := range m.Addrs {
		out.MembershipConfig.Membership.Nodes[strconv.FormatUint(id, 10)] = a
	}
	out.UnderReplicatedSegments = p.roll.UnderReplicated()
	out.UnderReplicated = len(out.UnderReplicatedSegments)
	if out.State == "Leader" {
		out.Replication = map[string]status.Replication{}
		for id, f := range s.Followers {
			out.Replication[strconv.FormatUint(id, 10)] = status.Replication{MatchIndex: f.MatchIndex, NextIndex: f.NextIndex, Index: f.MatchIndex}
		}
	}
	return out, nil
}

// topicsDoc builds the TOPICS array. The open segment's count is exact
// when it is led here, else from its leader's latest heartbeat (at most
// ~250 ms old), so a dead node cannot stall the listing.
func (n *Node) topicsDoc() []status.TopicSummary {
	p := n.parts
	st := n.fsm.State()
	names := make([]string, 0, len(st.Topics))
	for name := range st.Topics {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]status.TopicSummary, 0, len(names))
	for _, name := range names {
		t := st.Topics[name]
		var open uint64
		if t.LeaderNode == p.self {
			open, _ = p.seg.Count(context.Background(), name, t.CurrentSegment)
		} else {
			open = p.cluster.ReportedCount(t.LeaderNode, name, t.CurrentSegment)
		}
		out = append(out, statedoc.Summary(*t, open, n.cfg.Retention))
	}
	return out
}
