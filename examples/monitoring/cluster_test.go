package monitoring

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/status"
)

// TestMain builds the walrus binaries once for the multi-process test
// (skipped with -short, which then builds nothing).
func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }

const clusterTimeout = 30 * time.Second

// sample is one exposition line: labels and value.
type sample struct {
	labels map[string]string
	value  float64
}

var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// parseExposition parses Prometheus text format into name -> samples.
func parseExposition(body []byte) (map[string][]sample, error) {
	out := map[string][]sample{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest := line, ""
		labels := map[string]string{}
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("bad line %q", line)
			}
			name, rest = line[:i], strings.TrimSpace(line[j+1:])
			for _, m := range labelRE.FindAllStringSubmatch(line[i+1:j], -1) {
				labels[m[1]] = m[2]
			}
		} else {
			f := strings.Fields(line)
			if len(f) < 2 {
				return nil, fmt.Errorf("bad line %q", line)
			}
			name, rest = f[0], f[1]
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			return nil, fmt.Errorf("bad value in %q: %w", line, err)
		}
		out[name] = append(out[name], sample{labels, v})
	}
	return out, nil
}

// scrapeNode returns node n's parsed /metrics and the raw body.
func scrapeNode(t *testing.T, n *testcluster.Node) (map[string][]sample, []byte, error) {
	body, err := scrapeErr(t, "http://"+n.HTTPAddr+"/metrics")
	if err != nil {
		return nil, nil, fmt.Errorf("node %d: %w", n.ID, err)
	}
	ms, err := parseExposition(body)
	if err != nil {
		return nil, nil, fmt.Errorf("node %d: %w", n.ID, err)
	}
	return ms, body, nil
}

// mustScrapeNode is scrapeNode failing the test on error.
func mustScrapeNode(t *testing.T, n *testcluster.Node) (map[string][]sample, []byte) {
	t.Helper()
	ms, body, err := scrapeNode(t, n)
	if err != nil {
		t.Fatal(err)
	}
	return ms, body
}

// value returns the single sample of name whose labels include want.
func value(ms map[string][]sample, name string, want map[string]string) (float64, error) {
	var found []float64
	for _, s := range ms[name] {
		ok := true
		for k, v := range want {
			if s.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			found = append(found, s.value)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%s%v: %d samples, want 1", name, want, len(found))
	}
	return found[0], nil
}

// sum adds every sample of name whose labels include want.
func sum(ms map[string][]sample, name string, want map[string]string) float64 {
	var total float64
	for _, s := range ms[name] {
		ok := true
		for k, v := range want {
			if s.labels[k] != v {
				ok = false
			}
		}
		if ok {
			total += s.value
		}
	}
	return total
}

func httpStatus(t *testing.T, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b := make([]byte, 512)
	n, _ := resp.Body.Read(b)
	return resp.StatusCode, string(b[:n]), nil
}

// agree checks one node's /metrics against METRICS JSON read just before
// (j1) and just after (j2) the scrape: values that only grow must lie
// between the two reads, values that can change arbitrarily (state,
// leader) must equal both when the two reads agree.
func agree(ms map[string][]sample, j1, j2 status.Metrics) error {
	get := func(name string, labels map[string]string) (float64, error) { return value(ms, name, labels) }
	between := func(name string, lo, hi uint64) error {
		v, err := get(name, nil)
		if err != nil {
			return err
		}
		if v < float64(lo) || v > float64(hi) {
			return fmt.Errorf("%s = %v, METRICS says %d..%d", name, v, lo, hi)
		}
		return nil
	}
	if j1.State != j2.State || j1.CurrentTerm != j2.CurrentTerm || !sameLeader(j1.CurrentLeader, j2.CurrentLeader) {
		return fmt.Errorf("cluster changed during the check (%s/%d -> %s/%d)", j1.State, j1.CurrentTerm, j2.State, j2.CurrentTerm)
	}
	if err := between("walrus_raft_term", j1.CurrentTerm, j2.CurrentTerm); err != nil {
		return err
	}
	if err := between("walrus_raft_log_index", j1.LastLogIndex, j2.LastLogIndex); err != nil {
		return err
	}
	if err := between("walrus_raft_applied_index", j1.LastApplied, j2.LastApplied); err != nil {
		return err
	}
	if err := between("walrus_raft_snapshot_index", j1.Snapshot.Index, j2.Snapshot.Index); err != nil {
		return err
	}
	if err := between("walrus_raft_snapshot_term", j1.Snapshot.Term, j2.Snapshot.Term); err != nil {
		return err
	}
	var leader uint64
	if j1.CurrentLeader != nil {
		leader = *j1.CurrentLeader
	}
	if err := between("walrus_raft_leader_id", leader, leader); err != nil {
		return err
	}
	isLeader := uint64(0)
	if j1.State == "Leader" {
		isLeader = 1
	}
	if err := between("walrus_raft_is_leader", isLeader, isLeader); err != nil {
		return err
	}
	if v, err := get("walrus_raft_state", map[string]string{"state": j1.State}); err != nil || v != 1 {
		return fmt.Errorf("walrus_raft_state{state=%q} = %v, %v; want 1", j1.State, v, err)
	}
	if err := between("walrus_raft_voters", uint64(len(j1.MembershipConfig.Voters)), uint64(len(j2.MembershipConfig.Voters))); err != nil {
		return err
	}
	if err := between("walrus_raft_learners", uint64(len(j1.MembershipConfig.Learners)), uint64(len(j2.MembershipConfig.Learners))); err != nil {
		return err
	}
	if j1.State != "Leader" {
		if n := len(ms["walrus_raft_replication_match_index"]); n != 0 {
			return fmt.Errorf("non-leader exposes %d replication series", n)
		}
		return nil
	}
	for id, r1 := range j1.Replication {
		r2, ok := j2.Replication[id]
		if !ok {
			return fmt.Errorf("follower %s vanished from replication", id)
		}
		v, err := get("walrus_raft_replication_match_index", map[string]string{"follower_id": id})
		if err != nil {
			return err
		}
		if v < float64(r1.MatchIndex) || v > float64(r2.MatchIndex) {
			return fmt.Errorf("match_index of %s = %v, METRICS says %d..%d", id, v, r1.MatchIndex, r2.MatchIndex)
		}
	}
	if got, want := len(ms["walrus_raft_replication_match_index"]), len(j2.Replication); got != want {
		return fmt.Errorf("%d replication series, METRICS replication has %d followers", got, want)
	}
	return nil
}

func sameLeader(a, b *uint64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// checkAgreement polls until every node's /metrics agrees with its
// METRICS JSON (a leader change or a write between the reads retries).
func checkAgreement(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	for _, n := range c.Nodes {
		testcluster.Eventually(t, clusterTimeout, func() error {
			j1, err := c.Metrics(n.ID)
			if err != nil {
				return err
			}
			ms, _, err := scrapeNode(t, n)
			if err != nil {
				return err
			}
			j2, err := c.Metrics(n.ID)
			if err != nil {
				return err
			}
			if err := agree(ms, j1, j2); err != nil {
				return fmt.Errorf("node %d: %w", n.ID, err)
			}
			return nil
		})
	}
}

// TestClusterMetrics starts 3 real nodes with HTTP enabled and checks the
// seed's and the promises about /metrics, /healthz and /readyz.
func TestClusterMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test; skipped with -short")
	}
	c := testcluster.Start(t, testcluster.Options{HTTP: true, LogLevel: "info"})

	// Health and readiness on every node.
	for _, n := range c.Nodes {
		code, body, err := httpStatus(t, "http://"+n.HTTPAddr+"/healthz")
		if err != nil || code != http.StatusOK || strings.TrimSpace(body) != "ok" {
			t.Fatalf("node %d /healthz: %d %q %v", n.ID, code, body, err)
		}
		testcluster.Eventually(t, clusterTimeout, func() error {
			code, body, err := httpStatus(t, "http://"+n.HTTPAddr+"/readyz")
			if err != nil {
				return err
			}
			if code != http.StatusOK || !strings.Contains(body, `"ready":true`) {
				return fmt.Errorf("node %d /readyz: %d %s", n.ID, code, body)
			}
			return nil
		})
	}

	// Every metric the rules and dashboard use exists on a live leader
	// (which alone exposes follower replication series).
	leader := c.Leader()
	testcluster.Eventually(t, clusterTimeout, func() error {
		ms, _, err := scrapeNode(t, leader)
		if err != nil {
			return err
		}
		if len(ms["walrus_raft_replication_match_index"]) != len(c.Nodes)-1 {
			return fmt.Errorf("leader has %d replication series, want %d", len(ms["walrus_raft_replication_match_index"]), len(c.Nodes)-1)
		}
		return nil
	})

	checkAgreement(t, c)

	// All nodes agree on leader and term.
	var leaders, terms []float64
	for _, n := range c.Nodes {
		ms, _ := mustScrapeNode(t, n)
		l, err := value(ms, "walrus_raft_leader_id", nil)
		if err != nil {
			t.Fatal(err)
		}
		tm, err := value(ms, "walrus_raft_term", nil)
		if err != nil {
			t.Fatal(err)
		}
		leaders, terms = append(leaders, l), append(terms, tm)
	}
	for i := range leaders {
		if leaders[i] != float64(leader.ID) || terms[i] != terms[0] {
			t.Fatalf("nodes disagree: leader ids %v (want %d), terms %v", leaders, leader.ID, terms)
		}
	}

	before, _ := mustScrapeNode(t, leader)
	lastBefore, err := value(before, "walrus_raft_log_index", nil)
	if err != nil {
		t.Fatal(err)
	}

	// Writes through a follower: a new topic is a Raft entry, the appends
	// are counted per topic wherever they land.
	const topic, puts = "metrics-check", 50
	conn := c.Conn(c.Follower().ID)
	for i := range puts {
		if r, err := conn.Do(fmt.Sprintf("PUT %s msg-%d", topic, i)); err != nil || r != "OK" {
			t.Fatalf("PUT %d: %q %v", i, r, err)
		}
	}

	const gets = 10
	for i := range gets {
		if r, err := conn.Do("GET " + topic); err != nil || !strings.HasPrefix(r, "OK ") {
			t.Fatalf("GET %d: %q %v", i, r, err)
		}
	}

	testcluster.Eventually(t, clusterTimeout, func() error {
		ms, _, err := scrapeNode(t, leader)
		if err != nil {
			return err
		}
		last, err := value(ms, "walrus_raft_log_index", nil)
		if err != nil {
			return err
		}
		if last <= lastBefore {
			return fmt.Errorf("leader last_log_index %v did not move past %v after writes", last, lastBefore)
		}
		for _, n := range c.Nodes {
			ns, _, err := scrapeNode(t, n)
			if err != nil {
				return err
			}
			applied, err := value(ns, "walrus_raft_applied_index", nil)
			if err != nil {
				return err
			}
			if applied <= lastBefore {
				return fmt.Errorf("node %d applied_index %v did not move past %v", n.ID, applied, lastBefore)
			}
			if v, err := value(ns, "walrus_topic_current_segment", map[string]string{"topic": topic}); err != nil || v < 1 {
				return fmt.Errorf("node %d walrus_topic_current_segment{topic=%s} = %v, %v", n.ID, topic, v, err)
			}
		}
		return nil
	})

	var appended, read, putsOK, getsOK float64
	for _, n := range c.Nodes {
		ms, _ := mustScrapeNode(t, n)
		appended += sum(ms, "walrus_appended_entries_total", map[string]string{"topic": topic})
		read += sum(ms, "walrus_read_entries_total", map[string]string{"topic": topic})
		putsOK += sum(ms, "walrus_client_requests_total", map[string]string{"command": "PUT", "result": "ok"})
		getsOK += sum(ms, "walrus_client_requests_total", map[string]string{"command": "GET", "result": "ok"})
	}
	// Client and Raft port traffic and leader learning are counted on every node.
	for _, n := range c.Nodes {
		ms, _ := mustScrapeNode(t, n)
		if v, err := value(ms, "walrus_network_bytes_total", map[string]string{"port": "client", "direction": "rx"}); err != nil || v <= 0 {
			t.Errorf("node %d client rx bytes = %v, %v", n.ID, v, err)
		}
		// Raft heartbeats and the internal RPC cross the Raft port both ways.
		for _, dir := range []string{"rx", "tx"} {
			if v, err := value(ms, "walrus_network_bytes_total", map[string]string{"port": "raft", "direction": dir}); err != nil || v <= 0 {
				t.Errorf("node %d raft %s bytes = %v, %v", n.ID, dir, v, err)
			}
		}
		if v, err := value(ms, "walrus_raft_leader_changes_total", nil); err != nil || v < 1 {
			t.Errorf("node %d leader changes = %v, %v; want >= 1", n.ID, v, err)
		}
	}

	// Storage operations are timed (the daemon wraps the store).
	var storageAppends float64
	for _, n := range c.Nodes {
		ms, _ := mustScrapeNode(t, n)
		storageAppends += sum(ms, "walrus_storage_operation_duration_seconds_count", map[string]string{"op": "append"})
	}
	if storageAppends < 1 {
		t.Errorf("walrus_storage_operation_duration_seconds_count{op=append} summed = %v, want >= 1", storageAppends)
	}
	if read < gets {
		t.Errorf("walrus_read_entries_total{topic=%s} summed over nodes = %v, want >= %d", topic, read, gets)
	}
	if getsOK < gets {
		t.Errorf("walrus_client_requests_total{command=GET,result=ok} summed = %v, want >= %d", getsOK, gets)
	}
	if appended != puts {
		t.Errorf("walrus_appended_entries_total{topic=%s} summed over nodes = %v, want %d", topic, appended, puts)
	}
	if putsOK < puts {
		t.Errorf("walrus_client_requests_total{command=PUT,result=ok} summed = %v, want >= %d", putsOK, puts)
	}

	// Followers catch up: the leader reports zero lag for each of them.
	testcluster.Eventually(t, clusterTimeout, func() error {
		ms, _, err := scrapeNode(t, leader)
		if err != nil {
			return err
		}
		lags := ms["walrus_raft_replication_lag_entries"]
		if len(lags) != len(c.Nodes)-1 {
			return fmt.Errorf("%d lag series on the leader", len(lags))
		}
		for _, l := range lags {
			if l.value != 0 {
				return fmt.Errorf("follower %s lag %v", l.labels["follower_id"], l.value)
			}
		}
		return nil
	})

	// Disk gauges: the data directory holds the segment just written.
	for _, n := range c.Nodes {
		ms, _ := mustScrapeNode(t, n)
		size, err1 := value(ms, "walrus_disk_size_bytes", nil)
		free, err2 := value(ms, "walrus_disk_free_bytes", nil)
		dir, err3 := value(ms, "walrus_data_dir_bytes", nil)
		if err1 != nil || err2 != nil || err3 != nil || size <= 0 || free <= 0 || free > size || dir <= 0 {
			t.Errorf("node %d disk gauges: size=%v free=%v data_dir=%v (%v %v %v)", n.ID, size, free, dir, err1, err2, err3)
		}
	}

	checkAgreement(t, c)

	// With a topic and replication in place, the live leader exposes every
	// metric name the alert rules and the dashboard use (but the consumer
	// group series: this cluster has no consumer group).
	_, body := mustScrapeNode(t, leader)
	checkNamesExist(t, body, perGroup)

	// A real Prometheus with this directory's config and rules, pointed at
	// the cluster: the dashboard's queries return data and the rules
	// evaluate cleanly.
	checkWithPrometheus(t, c)
}
