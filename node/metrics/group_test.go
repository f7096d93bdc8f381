package metrics

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The group coordinator's Meter (node/group) is satisfied by *Metrics.
var _ interface {
	SetGroup(group, topic string, lag, pending uint64)
	DeleteGroup(group, topic string)
	AddRedeliveries(group, topic string, n int)
} = (*Metrics)(nil)

var groupNames = []string{"walrus_group_lag", "walrus_group_pending", "walrus_group_redeliveries_total"}

const groupHelp = `
# HELP walrus_group_lag Entries of the topic past the consumer group's committed offset (the group coordinator's view).
# TYPE walrus_group_lag gauge
# HELP walrus_group_pending Entries delivered to the consumer group and not yet acknowledged (the group coordinator's view).
# TYPE walrus_group_pending gauge
# HELP walrus_group_redeliveries_total Entries delivered to the consumer group again after their lease ended unacknowledged.
# TYPE walrus_group_redeliveries_total counter
`

// wantGroups is the exposition of the group series: groupHelp with the
// samples inserted under their TYPE lines.
func wantGroups(lag, pending, redeliveries string) string {
	out := groupHelp
	for name, samples := range map[string]string{"lag": lag, "pending": pending, "redeliveries_total": redeliveries} {
		typ := "gauge"
		if name == "redeliveries_total" {
			typ = "counter"
		}
		line := "# TYPE walrus_group_" + name + " " + typ + "\n"
		out = strings.Replace(out, line, line+samples, 1)
	}
	return out
}

func TestGroupSeries(t *testing.T) {
	m := New(1)
	if n, _ := testutil.GatherAndCount(m.Registry(), groupNames...); n != 0 {
		t.Fatalf("%d group series before any group is reported", n)
	}
	m.SetGroup("billing", "orders", 120, 7)
	m.SetGroup("audit", "orders", 3, 0)
	m.AddRedeliveries("billing", "orders", 4)
	m.AddRedeliveries("billing", "orders", 0)  // ignored
	m.AddRedeliveries("billing", "orders", -1) // ignored
	m.SetGroup("billing", "orders", 100, 5)    // gauges follow the latest report
	want := wantGroups(
		"walrus_group_lag{group=\"audit\",node_id=\"1\",topic=\"orders\"} 3\nwalrus_group_lag{group=\"billing\",node_id=\"1\",topic=\"orders\"} 100\n",
		"walrus_group_pending{group=\"audit\",node_id=\"1\",topic=\"orders\"} 0\nwalrus_group_pending{group=\"billing\",node_id=\"1\",topic=\"orders\"} 5\n",
		"walrus_group_redeliveries_total{group=\"audit\",node_id=\"1\",topic=\"orders\"} 0\nwalrus_group_redeliveries_total{group=\"billing\",node_id=\"1\",topic=\"orders\"} 4\n")
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), groupNames...); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(m.Registry(), groupNames...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	// Deleting a pair removes its three series and nothing else; deleting
	// it again, or a pair never reported, does nothing.
	m.DeleteGroup("billing", "orders")
	m.DeleteGroup("billing", "orders")
	m.DeleteGroup("nobody", "orders")
	want = wantGroups(
		"walrus_group_lag{group=\"audit\",node_id=\"1\",topic=\"orders\"} 3\n",
		"walrus_group_pending{group=\"audit\",node_id=\"1\",topic=\"orders\"} 0\n",
		"walrus_group_redeliveries_total{group=\"audit\",node_id=\"1\",topic=\"orders\"} 0\n")
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), groupNames...); err != nil {
		t.Fatal(err)
	}
	m.DeleteGroup("audit", "orders")
	if n, _ := testutil.GatherAndCount(m.Registry(), groupNames...); n != 0 {
		t.Fatalf("%d group series after deleting every group", n)
	}

	// A pair first seen through AddRedeliveries gets all three series; a
	// pair reported again after its deletion starts its counter from 0.
	m.AddRedeliveries("billing", "orders", 2)
	m.DeleteGroup("billing", "orders")
	m.AddRedeliveries("billing", "orders", 1)
	want = wantGroups(
		"walrus_group_lag{group=\"billing\",node_id=\"1\",topic=\"orders\"} 0\n",
		"walrus_group_pending{group=\"billing\",node_id=\"1\",topic=\"orders\"} 0\n",
		"walrus_group_redeliveries_total{group=\"billing\",node_id=\"1\",topic=\"orders\"} 1\n")
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), groupNames...); err != nil {
		t.Fatal(err)
	}
}

// groupValue returns the value of one group series, or -1 when it does
// not exist.
func groupValue(t *testing.T, m *Metrics, name, group, topic string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["group"] == group && labels["topic"] == topic {
				if c := s.GetCounter(); c != nil {
					return c.GetValue()
				}
				return s.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func TestGroupLabelsBounded(t *testing.T) {
	m := New(1)
	for i := range MaxGroupLabels + 10 {
		m.SetGroup(fmt.Sprintf("g%d", i), "orders", 10, 1)
		m.AddRedeliveries(fmt.Sprintf("g%d", i), "orders", 1)
	}
	// The first MaxGroupLabels pairs keep their name; the 10 others share
	// OtherGroup, whose gauges are their sums.
	if n, _ := testutil.GatherAndCount(m.Registry(), "walrus_group_lag"); n != MaxGroupLabels+1 {
		t.Fatalf("lag series = %d, want %d", n, MaxGroupLabels+1)
	}
	over := fmt.Sprintf("g%d", MaxGroupLabels)
	for name, want := range map[string]float64{"walrus_group_lag": 100, "walrus_group_pending": 10, "walrus_group_redeliveries_total": 10} {
		if got := groupValue(t, m, name, OtherGroup, "orders"); got != want {
			t.Errorf("%s{group=%s} = %v, want %v", name, OtherGroup, got, want)
		}
	}
	if got := groupValue(t, m, "walrus_group_lag", over, "orders"); got != -1 {
		t.Errorf("group %s past the limit has a series of its own", over)
	}
	// A folded pair's new report replaces its share of the sum.
	m.SetGroup(over, "orders", 40, 0)
	if got := groupValue(t, m, "walrus_group_lag", OtherGroup, "orders"); got != 130 {
		t.Errorf("%s lag after one pair's update = %v, want 130", OtherGroup, got)
	}
	// Deleting a folded pair takes its share out of the gauges; the shared
	// counter keeps its count (a counter never goes down).
	m.DeleteGroup(over, "orders")
	if got := groupValue(t, m, "walrus_group_lag", OtherGroup, "orders"); got != 90 {
		t.Errorf("%s lag after deleting a pair = %v, want 90", OtherGroup, got)
	}
	if got := groupValue(t, m, "walrus_group_redeliveries_total", OtherGroup, "orders"); got != 10 {
		t.Errorf("%s redeliveries after deleting a pair = %v, want 10", OtherGroup, got)
	}
	// A deleted named pair frees its slot for the next new pair; pairs
	// already folded stay folded (their series must not jump).
	m.DeleteGroup("g0", "orders")
	m.SetGroup("late", "orders", 5, 0)
	if got := groupValue(t, m, "walrus_group_lag", "late", "orders"); got != 5 {
		t.Errorf("new pair after a slot was freed: lag = %v, want its own series with 5", got)
	}
	m.SetGroup("later", "orders", 5, 0)
	if got := groupValue(t, m, "walrus_group_lag", "later", "orders"); got != -1 {
		t.Errorf("pair past the limit got its own series")
	}
	// The last folded pair gone, the OtherGroup series go too.
	for i := MaxGroupLabels + 1; i < MaxGroupLabels+10; i++ {
		m.DeleteGroup(fmt.Sprintf("g%d", i), "orders")
	}
	m.DeleteGroup("later", "orders")
	for _, name := range groupNames {
		if got := groupValue(t, m, name, OtherGroup, "orders"); got != -1 {
			t.Errorf("%s{group=%s} = %v after every folded pair was deleted", name, OtherGroup, got)
		}
	}
	if n, _ := testutil.GatherAndCount(m.Registry(), "walrus_group_lag"); n != MaxGroupLabels {
		t.Fatalf("lag series = %d, want %d", n, MaxGroupLabels)
	}
}

// Topics are folded by TopicLabel, as for the other per-topic series: a
// group on many topics cannot blow up the series count either.
func TestGroupTopicsBounded(t *testing.T) {
	m := New(1)
	for i := range MaxTopicLabels + 5 {
		m.ObserveAppend(fmt.Sprintf("t%d", i), 1, 1) // the first MaxTopicLabels topics take the labels
	}
	m.SetGroup("g", "t0", 1, 0)
	m.SetGroup("g", fmt.Sprintf("t%d", MaxTopicLabels), 2, 0)
	m.SetGroup("g", fmt.Sprintf("t%d", MaxTopicLabels+1), 3, 0)
	if got := groupValue(t, m, "walrus_group_lag", "g", OtherTopic); got != 5 {
		t.Errorf("lag{group=g,topic=%s} = %v, want 5 (two folded topics)", OtherTopic, got)
	}
	if n, _ := testutil.GatherAndCount(m.Registry(), "walrus_group_lag"); n != 2 {
		t.Errorf("lag series = %d, want 2", n)
	}
	m.DeleteGroup("g", fmt.Sprintf("t%d", MaxTopicLabels))
	if got := groupValue(t, m, "walrus_group_lag", "g", OtherTopic); got != 3 {
		t.Errorf("lag{group=g,topic=%s} after deleting one = %v, want 3", OtherTopic, got)
	}
}

// TestGroupConcurrent runs the coordinator's calls from several
// goroutines (for -race) and checks the sums come out exact.
func TestGroupConcurrent(t *testing.T) {
	m := New(1)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				g := fmt.Sprintf("g%d", (w*200+i)%(MaxGroupLabels+50))
				m.SetGroup(g, "t", uint64(i), 1)
				m.AddRedeliveries(g, "t", 1)
				if i%3 == 0 {
					m.DeleteGroup(g, "t")
				}
			}
		})
	}
	wg.Wait()
	for i := range MaxGroupLabels + 50 {
		m.DeleteGroup(fmt.Sprintf("g%d", i), "t")
	}
	if n, _ := testutil.GatherAndCount(m.Registry(), groupNames...); n != 0 {
		t.Fatalf("%d group series left after deleting every pair", n)
	}
	m.SetGroup("fresh", "t", 1, 0)
	if got := groupValue(t, m, "walrus_group_lag", "fresh", "t"); got != 1 {
		t.Fatalf("slots leaked: a new pair after deleting all gets lag %v, want its own series", got)
	}
}
