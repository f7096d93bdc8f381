package status

import (
	"encoding/json"
	"testing"
)

func TestMetricsShape(t *testing.T) {
	l := uint64(2)
	b, err := json.Marshal(Metrics{ID: 1, State: "Follower", CurrentLeader: &l, MembershipConfig: MembershipConfig{Membership: Membership{Nodes: map[string]string{"1": "a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "state", "current_term", "vote", "last_log_index", "last_applied", "current_leader", "membership_config", "snapshot", "under_replicated"} {
		if _, ok := m[k]; !ok {
			t.Errorf("METRICS lacks %q: %s", k, b)
		}
	}
	var back Metrics
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if id, ok := back.Leader(); !ok || id != 2 {
		t.Errorf("Leader() = %d, %v", id, ok)
	}
	if _, ok := (Metrics{}).Leader(); ok {
		t.Error("no leader must report false")
	}
}
