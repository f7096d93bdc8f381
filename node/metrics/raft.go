package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RaftStats is a snapshot of this node's Raft view, taken at scrape time by
// the function given to SetRaftSource. It mirrors the METRICS JSON so the
// two always agree.
type RaftStats struct {
	// State is hashicorp/raft's RaftState.String(): "Follower",
	// "Candidate", "Leader" or "Shutdown".
	State        string
	Term         uint64
	LastLogIndex uint64
	AppliedIndex uint64
	CommitIndex  uint64
	// LeaderID is the current leader's node id; meaningful only when
	// HasLeader is true.
	LeaderID      uint64
	HasLeader     bool
	SnapshotIndex uint64
	SnapshotTerm  uint64
	// SnapshotBytes is the size of the latest metadata snapshot (persisted
	// by this node, or the newest on disk at start); SnapshotPersist and
	// SnapshotRestore are the latest persist and restore durations (0 when
	// none happened since start). Not part of the METRICS JSON.
	SnapshotBytes   int64
	SnapshotPersist time.Duration
	SnapshotRestore time.Duration
	// Followers is the leader's view of each other voter/learner's
	// replication progress, keyed by node id; empty on non-leaders.
	Followers map[uint64]Follower
	Voters    []uint64
	Learners  []uint64
}

// Follower is one follower's replication progress as seen by the leader.
type Follower struct {
	MatchIndex uint64
	NextIndex  uint64
}

// raftStates are the values of the state label; exactly one is 1.
var raftStates = []string{"Follower", "Candidate", "Leader", "Shutdown"}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "raft", name), help, labels, nil)
}

var (
	descRaftState         = desc("state", "1 for this node's current Raft state, 0 for the others.", "state")
	descRaftTerm          = desc("term", "Current Raft term.")
	descRaftLastLogIndex  = desc("log_index", "Last log index: the last entry in this node's Raft log (METRICS last_log_index; name as in the monitoring guide's scraper example).")
	descRaftAppliedIndex  = desc("applied_index", "Index of the last entry applied to the state machine (METRICS last_applied).")
	descRaftCommitIndex   = desc("commit_index", "Index of the last committed entry known to this node.")
	descRaftLeaderID      = desc("leader_id", "Node id of the current Raft leader; 0 when there is none.")
	descRaftHasLeader     = desc("has_leader", "1 when this node knows a Raft leader.")
	descRaftIsLeader      = desc("is_leader", "1 when this node is the Raft leader.")
	descRaftSnapshotIndex = desc("snapshot_index", "Last log index covered by the latest snapshot.")
	descRaftSnapshotTerm  = desc("snapshot_term", "Term of the latest snapshot.")
	descRaftSnapshotBytes = desc("snapshot_bytes", "Size of the latest metadata snapshot: persisted by this node, or the newest on disk at start.")
	descRaftSnapPersist   = desc("snapshot_persist_seconds", "Time the latest metadata snapshot took to persist (0 until one is taken).")
	descRaftSnapRestore   = desc("snapshot_restore_seconds", "Time the latest metadata snapshot restore took (at start-up or installed from the leader; 0 until one happens).")
	descRaftVoters        = desc("voters", "Voting members in the current configuration.")
	descRaftLearners      = desc("learners", "Non-voting members (learners) in the current configuration.")
	descRaftMatchIndex    = desc("replication_match_index", "Leader only: highest log index known replicated on the follower.", "follower_id")
	descRaftNextIndex     = desc("replication_next_index", "Leader only: next log index the leader sends the follower.", "follower_id")
	descRaftLag           = desc("replication_lag_entries", "Leader only: last_log_index minus the follower's match_index.", "follower_id")
	descRaftSourceUp      = desc("source_up", "1 when a Raft stats source is installed (0 before the node has started Raft).")
)

// raftCollector turns a RaftStats snapshot into gauges at scrape time, so
// the values are exactly what METRICS would have answered at that moment.
type raftCollector struct {
	nodeID uint64
	mu     sync.RWMutex
	source func() RaftStats
}

// SetRaftSource installs the function the Raft gauges are read from at
// scrape time. It may be called again (e.g. after a restart of Raft) and
// with nil to remove the source. fn must be safe for concurrent use and
// cheap: it runs on every scrape.
func (m *Metrics) SetRaftSource(fn func() RaftStats) {
	m.raft.mu.Lock()
	m.raft.source = fn
	m.raft.mu.Unlock()
}

func (c *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftState, descRaftTerm, descRaftLastLogIndex, descRaftAppliedIndex,
		descRaftCommitIndex, descRaftLeaderID, descRaftHasLeader, descRaftIsLeader, descRaftSnapshotIndex,
		descRaftSnapshotTerm, descRaftSnapshotBytes, descRaftSnapPersist, descRaftSnapRestore, descRaftVoters, descRaftLearners, descRaftMatchIndex, descRaftNextIndex, descRaftLag,
		descRaftSourceUp} {
		ch <- d
	}
}

func (c *raftCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	fn := c.source
	c.mu.RUnlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if fn == nil {
		gauge(descRaftSourceUp, 0)
		return
	}
	gauge(descRaftSourceUp, 1)
	s := fn()
	for _, st := range raftStates {
		gauge(descRaftState, b2f(s.State == st), st)
	}
	gauge(descRaftTerm, float64(s.Term))
	gauge(descRaftLastLogIndex, float64(s.LastLogIndex))
	gauge(descRaftAppliedIndex, float64(s.AppliedIndex))
	gauge(descRaftCommitIndex, float64(s.CommitIndex))
	leader := 0.0
	if s.HasLeader {
		leader = float64(s.LeaderID)
	}
	gauge(descRaftLeaderID, leader)
	gauge(descRaftHasLeader, b2f(s.HasLeader))
	gauge(descRaftIsLeader, b2f(s.State == "Leader"))
	gauge(descRaftSnapshotIndex, float64(s.SnapshotIndex))
	gauge(descRaftSnapshotTerm, float64(s.SnapshotTerm))
	gauge(descRaftSnapshotBytes, float64(s.SnapshotBytes))
	gauge(descRaftSnapPersist, s.SnapshotPersist.Seconds())
	gauge(descRaftSnapRestore, s.SnapshotRestore.Seconds())
	gauge(descRaftVoters, float64(len(s.Voters)))
	gauge(descRaftLearners, float64(len(s.Learners)))
	if s.State != "Leader" {
		// Only the leader tracks follower progress; a stale map from a
		// former leader would report lag that no longer exists.
		return
	}
	for id, f := range s.Followers {
		if id == c.nodeID {
			continue
		}
		fid := strconv.FormatUint(id, 10)
		gauge(descRaftMatchIndex, float64(f.MatchIndex), fid)
		gauge(descRaftNextIndex, float64(f.NextIndex), fid)
		var lag uint64
		if s.LastLogIndex > f.MatchIndex {
			lag = s.LastLogIndex - f.MatchIndex
		}
		gauge(descRaftLag, float64(lag), fid)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
