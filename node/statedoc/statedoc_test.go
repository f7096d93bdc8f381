package statedoc

import (
	"encoding/json"
	"testing"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/status"
)

// TestStateShape pins the STATE field names the seed and DESIGN.md use.
func TestStateShape(t *testing.T) {
	topic := metadata.Topic{
		Name: "t", CurrentSegment: 3, LeaderNode: 2, SealedOffset: 15,
		SealedSegments: map[uint64]uint64{1: 10, 2: 5}, SegmentLeaders: map[uint64]uint64{1: 1, 2: 3, 3: 2},
		Replicas: map[uint64][]uint64{3: {2, 3, 1}}, ReplicationFactor: 3,
	}
	s := State(topic, []status.UnderReplicated{{Topic: "t", Segment: 3, Missing: []uint64{1}}, {Topic: "other", Segment: 1, Missing: []uint64{2}}}, metadata.Limits{})
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"topic", "current_segment", "leader_node", "sealed_segments", "segment_leaders", "sealed_offset", "epoch", "cursor", "replicas", "replication_factor", "ack_quorum", "under_replicated"} {
		if _, ok := m[k]; !ok {
			t.Errorf("STATE lacks %q: %s", k, b)
		}
	}
	if got := m["sealed_segments"].(map[string]any)["1"]; got != float64(10) {
		t.Errorf("sealed_segments[1] = %v", got)
	}
	if u := m["under_replicated"].(map[string]any); len(u) != 1 {
		t.Errorf("under_replicated should list this topic's segment only: %v", u)
	}
	var back status.State
	if err := json.Unmarshal(b, &back); err != nil || back.CurrentSegment != 3 || back.SealedSegments["2"] != 5 {
		t.Errorf("decode into State: %v %+v", err, back)
	}
}

func TestSummaryDoc(t *testing.T) {
	s := Summary(metadata.Topic{Name: "t", CurrentSegment: 2, LeaderNode: 1, SealedOffset: 10, SealedSegments: map[uint64]uint64{1: 10}}, 4, metadata.Limits{})
	if s.Entries != 14 || s.SealedSegments != 1 || s.Topic != "t" {
		t.Errorf("%+v", s)
	}
}
