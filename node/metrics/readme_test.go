package metrics

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReadmeListsEveryMetric keeps README.md's metric table in sync with
// the registry: adding or renaming a metric without documenting it fails.
func TestReadmeListsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := New(1)
	m.SetRaftSource(leaderStats)
	m.SetClusterSource(func() ClusterStats { return ClusterStats{Topics: []TopicStats{{Name: "a"}}} })
	m.SetDataDir(t.TempDir())
	m.ObserveAppend("a", 1, 1)
	m.ObserveRead("a", 1, 1)
	m.SetGroup("g", "a", 1, 1) // group series exist once a group is reported
	m.SetTLSCertExpiry("client", time.Now())
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), Namespace+"_") {
			continue
		}
		n++
		if !bytes.Contains(readme, []byte("| `"+mf.GetName()+"` | "+strings.ToLower(mf.GetType().String())+" |")) {
			t.Errorf("README.md does not list %s (%s)", mf.GetName(), mf.GetType())
		}
	}
	if n < 40 {
		t.Fatalf("only %d walrus_ metrics gathered", n)
	}
}

// TestSeedScraperNames: the monitoring guide's example scraper exported
// walrus_raft_term, walrus_raft_log_index and walrus_raft_is_leader with a
// node_id label; the built-in endpoint keeps those names and that label.
func TestSeedScraperNames(t *testing.T) {
	m := New(9)
	m.SetRaftSource(leaderStats)
	want := `
# HELP walrus_raft_is_leader 1 when this node is the Raft leader.
# TYPE walrus_raft_is_leader gauge
walrus_raft_is_leader{node_id="9"} 1
# HELP walrus_raft_log_index Last log index: the last entry in this node's Raft log (METRICS last_log_index; name as in the monitoring guide's scraper example).
# TYPE walrus_raft_log_index gauge
walrus_raft_log_index{node_id="9"} 142
# HELP walrus_raft_term Current Raft term.
# TYPE walrus_raft_term gauge
walrus_raft_term{node_id="9"} 5
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "walrus_raft_term", "walrus_raft_log_index", "walrus_raft_is_leader"); err != nil {
		t.Fatal(err)
	}
}
