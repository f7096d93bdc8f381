package testcluster

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Metrics is the METRICS reply (the seed's JSON).
type Metrics struct {
	ID            uint64  `json:"id"`
	State         string  `json:"state"`
	CurrentTerm   uint64  `json:"current_term"`
	LastLogIndex  uint64  `json:"last_log_index"`
	LastApplied   uint64  `json:"last_applied"`
	CurrentLeader *uint64 `json:"current_leader"`
	Vote          struct {
		Term      uint64 `json:"term"`
		NodeID    uint64 `json:"node_id"`
		Committed bool   `json:"committed"`
	} `json:"vote"`
	MembershipConfig struct {
		Nodes    []uint64 `json:"nodes"`
		Voters   []uint64 `json:"voters"`
		Learners []uint64 `json:"learners"`
	} `json:"membership_config"`
	Snapshot struct {
		Index uint64 `json:"index"`
		Term  uint64 `json:"term"`
	} `json:"snapshot"`
	Replication map[string]struct {
		MatchIndex uint64 `json:"match_index"`
		NextIndex  uint64 `json:"next_index"`
	} `json:"replication"`
}

// TopicState is the STATE reply (the seed's JSON).
type TopicState struct {
	Topic          string            `json:"topic"`
	CurrentSegment uint64            `json:"current_segment"`
	LeaderNode     uint64            `json:"leader_node"`
	SealedSegments map[string]uint64 `json:"sealed_segments"`
	SegmentLeaders map[string]uint64 `json:"segment_leaders"`
	// Cursor is the committed shared GET cursor (an extension of the
	// seed's STATE; nil when the node does not report it).
	Cursor *Cursor `json:"cursor,omitempty"`
}

// Cursor is a position in a topic: the next entry GET delivers.
type Cursor struct {
	Segment uint64 `json:"segment"`
	Offset  uint64 `json:"offset"`
}

// SealedTotal is the sum of the sealed segments' entry counts.
func (s TopicState) SealedTotal() uint64 {
	var n uint64
	for _, c := range s.SealedSegments {
		n += c
	}
	return n
}

// Metrics asks node id for METRICS over a fresh raw connection.
func (c *Cluster) Metrics(id uint64) (Metrics, error) {
	var m Metrics
	err := c.query(id, "METRICS", &m)
	return m, err
}

// State asks node id for STATE <topic>.
func (c *Cluster) State(id uint64, topic string) (TopicState, error) {
	var s TopicState
	err := c.query(id, "STATE "+topic, &s)
	return s, err
}

func (c *Cluster) query(id uint64, line string, v any) error {
	ctx, cancel := ctxTimeout()
	defer cancel()
	conn, err := Dial(ctx, c.Node(id).ClientAddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	reply, err := conn.Do(line)
	if err != nil {
		return fmt.Errorf("node %d %s: %w", id, line, err)
	}
	if strings.HasPrefix(reply, "ERR") {
		return fmt.Errorf("node %d %s: %s", id, line, reply)
	}
	if err := json.Unmarshal([]byte(reply), v); err != nil {
		return fmt.Errorf("node %d %s: %w in %q", id, line, err, reply)
	}
	return nil
}
