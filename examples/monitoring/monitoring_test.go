package monitoring

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/walrus-go/walrus/node/metrics"
)

// promtool returns the path of promtool, skipping the test when it is not
// installed locally; under CI (CI=true, where .ci/run installs Debian's
// prometheus package) a missing promtool is a failure, not a skip.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found but CI=true: .ci/run should have installed Debian's prometheus package")
		}
		t.Skip("promtool not installed (apt-get install --no-install-recommends prometheus); skipping outside CI")
	}
	return p
}

func runPromtool(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	out := runPromtool(t, "check", "rules", "alerts.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("unexpected output:\n%s", out)
	}
}

// ruleTestFiles returns the promtool unit test files of alerts.yml:
// alerts_test.yml and one file per further area (alerts_groups_test.yml).
func ruleTestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("alerts*_test.yml")
	if err != nil || len(files) < 2 {
		t.Fatalf("rule test files: %v %v", files, err)
	}
	return files
}

func TestPromtoolTestRules(t *testing.T) {
	out := runPromtool(t, append([]string{"test", "rules"}, ruleTestFiles(t)...)...)
	if n := strings.Count(out, "SUCCESS"); n != len(ruleTestFiles(t)) {
		t.Fatalf("want SUCCESS for each of %v:\n%s", ruleTestFiles(t), out)
	}
}

func TestPromtoolCheckConfig(t *testing.T) {
	runPromtool(t, "check", "config", "prometheus.yml")
}

// TestDashboardQueriesParse feeds every dashboard query to promtool as a
// recording rule, so a PromQL syntax error in the dashboard fails here.
func TestDashboardQueriesParse(t *testing.T) {
	bin := promtool(t)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range dashboardQueries(t) {
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: grafanaToPromQL(q)})
	}
	doc := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), bin, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("dashboard queries do not parse: %v\n%s\n%s", err, out, b)
	}
}

// grafanaToPromQL replaces Grafana's template variables with values
// Prometheus accepts.
func grafanaToPromQL(q string) string {
	return strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h", "$job", "walrus").Replace(q)
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadAlerts(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var out []alertRule
	for _, g := range doc.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

// TestAlertsCoverSeed checks every alert of the monitoring guide is
// present with its severity and the guide's threshold, and every alert
// documented and proven by the rule tests to fire and to stay quiet.
func TestAlertsCoverSeed(t *testing.T) {
	rules := map[string]alertRule{}
	for _, r := range loadAlerts(t) {
		rules[r.Alert] = r
	}
	seed := []struct{ name, severity, mustContain, forDur string }{
		{"WalrusNoRaftLeader", "critical", "walrus_raft_is_leader", "30s"},
		{"WalrusFollowerLagCritical", "critical", "> 1000", ""},
		{"WalrusDiskUsageCritical", "critical", "> 0.85", ""},
		{"WalrusMultipleLeaders", "critical", "> 1", ""},
		{"WalrusWritesFailing", "critical", `command="PUT"`, ""},
		{"WalrusFrequentElections", "warning", "[1h]", ""},
		{"WalrusFollowerLagWarning", "warning", "> 100", ""},
		{"WalrusDiskUsageWarning", "warning", "> 0.70", ""},
		{"WalrusErrorLogRate", "warning", `level="error"`, ""},
		{"WalrusSlowRollovers", "warning", "walrus_rollover_duration_seconds_bucket", ""},
	}
	for _, s := range seed {
		r, ok := rules[s.name]
		if !ok {
			t.Errorf("alert %s missing", s.name)
			continue
		}
		if r.Labels["severity"] != s.severity {
			t.Errorf("%s severity = %q, want %q", s.name, r.Labels["severity"], s.severity)
		}
		if !strings.Contains(r.Expr, s.mustContain) {
			t.Errorf("%s expr %q does not contain %q", s.name, r.Expr, s.mustContain)
		}
		if s.forDur != "" && r.For != s.forDur {
			t.Errorf("%s for = %q, want %q", s.name, r.For, s.forDur)
		}
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, f := range ruleTestFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tests struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []any  `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(b, &tests); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range tests.Tests {
			for _, c := range g.AlertRuleTest {
				if len(c.ExpAlerts) > 0 {
					fires[c.Alertname] = true
				} else {
					quiet[c.Alertname] = true
				}
			}
		}
	}
	for name, r := range rules {
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s lacks a summary or description", name)
		}
		if !fires[name] || !quiet[name] {
			t.Errorf("%s: the rule tests must show it firing (%v) and not firing (%v)", name, fires[name], quiet[name])
		}
	}
}

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	return d
}

func dashboardQueries(t *testing.T) []string {
	var qs []string
	for _, p := range loadDashboard(t).Panels {
		for _, tg := range p.Targets {
			qs = append(qs, tg.Expr)
		}
	}
	if len(qs) == 0 {
		t.Fatal("dashboard has no queries")
	}
	return qs
}

// TestDashboardHasSeedPanels checks the guide's "Essential Metrics
// Dashboard" panels are all there, each with at least one query.
func TestDashboardHasSeedPanels(t *testing.T) {
	d := loadDashboard(t)
	titles := map[string]int{}
	for _, p := range d.Panels {
		titles[p.Title] = len(p.Targets)
	}
	for _, want := range []string{"Raft state per node", "Current term", "Leader ID", "Quorum status", "Replication lag",
		"Last applied index", "Snapshot status", "Active segments", "Segment distribution", "Rollover frequency",
		"Disk usage", "Network traffic", "Log errors"} {
		if n, ok := titles[want]; !ok || n == 0 {
			t.Errorf("panel %q missing or without query", want)
		}
	}
}

// metricNameRE finds metric names of ours (walrus_*) and of the standard
// Go/process collectors in PromQL. Label names and functions never start
// with these prefixes.
var metricNameRE = regexp.MustCompile(`\b(?:walrus|process|go)_[a-zA-Z0-9_]+`)

// referencedMetrics returns every metric name used by alerts.yml and
// dashboard.json, with where it is used.
func referencedMetrics(t *testing.T) map[string][]string {
	refs := map[string][]string{}
	add := func(where, expr string) {
		for _, n := range metricNameRE.FindAllString(expr, -1) {
			if !slices.Contains(refs[n], where) {
				refs[n] = append(refs[n], where)
			}
		}
	}
	for _, r := range loadAlerts(t) {
		add("alert "+r.Alert, r.Expr)
	}
	d := loadDashboard(t)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			add("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		add("variable", v.Definition)
	}
	if len(refs) < 20 {
		t.Fatalf("only %d metric names found; the extraction is broken", len(refs))
	}
	return refs
}

// exposedNames parses Prometheus text exposition and returns the sample
// names (histograms show up as _bucket, _sum and _count, as PromQL sees
// them).
func exposedNames(t *testing.T, body []byte) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end <= 0 {
			t.Fatalf("unparseable exposition line %q", line)
		}
		names[line[:end]] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// perGroup reports whether name is a consumer group series. Those exist
// only on the node coordinating a group (the Raft leader), from the
// group's first READ until it is dropped, so a live cluster without
// consumer groups has none; TestMetricNamesExist reports a group to prove
// their names.
func perGroup(name string) bool { return strings.HasPrefix(name, "walrus_group_") }

// checkNamesExist fails the test for every metric used by the rules or
// dashboard that body (a /metrics response) does not contain, except
// those for which optional (if not nil) is true.
func checkNamesExist(t *testing.T, body []byte, optional func(string) bool) {
	t.Helper()
	exposed := exposedNames(t, body)
	refs := referencedMetrics(t)
	missing := []string{}
	for n, where := range refs {
		if !exposed[n] && (optional == nil || !optional(n)) {
			missing = append(missing, fmt.Sprintf("%s (used by %s)", n, strings.Join(where, ", ")))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("metric not exposed: %s", m)
	}
}

func scrape(t *testing.T, url string) []byte {
	t.Helper()
	b, err := scrapeErr(t, url)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scrapeErr GETs url and returns the body of a 200 answer.
func scrapeErr(t *testing.T, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d\n%s", url, resp.StatusCode, b)
	}
	return b, nil
}

// TestMetricNamesExist serves a node's registry, with every source
// installed as a running leader would, over HTTP and checks every metric
// name the rules and dashboard use is in the scrape.
func TestMetricNamesExist(t *testing.T) {
	m := metrics.New(1)
	m.SetRaftSource(func() metrics.RaftStats {
		return metrics.RaftStats{State: "Leader", Term: 2, LastLogIndex: 10, AppliedIndex: 10, CommitIndex: 10,
			LeaderID: 1, HasLeader: true, Followers: map[uint64]metrics.Follower{2: {MatchIndex: 9, NextIndex: 10}},
			Voters: []uint64{1, 2, 3}}
	})
	m.SetClusterSource(func() metrics.ClusterStats {
		return metrics.ClusterStats{Topics: []metrics.TopicStats{{Name: "logs", CurrentSegment: 1, LeaderNode: 1,
			SealedLedHere: 0}}}
	})
	m.SetDataDir(t.TempDir())
	m.ObserveAppend("logs", 1, 5)
	m.ObserveRead("logs", 1, 5)
	m.SetGroup("billing", "logs", 3, 1)
	m.AddRedeliveries("billing", "logs", 1)
	srv := metrics.NewHTTPServer("127.0.0.1:0", m, nil, nil)
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	checkNamesExist(t, scrape(t, "http://"+srv.Addr()+"/metrics"), nil)
}

// TestScrapeTargetsMatchConfigs checks prometheus.yml scrapes exactly the
// HTTP ports of the sample cluster configs in configs/node{1,2,3}.yaml.
func TestScrapeTargetsMatchConfigs(t *testing.T) {
	var want []string
	for i := 1; i <= 3; i++ {
		path := filepath.Join("..", "..", "configs", fmt.Sprintf("node%d.yaml", i))
		b, err := os.ReadFile(path)
		if err != nil {
			t.Skipf("sample cluster configs not present: %v", err)
		}
		var cfg struct {
			HTTP struct {
				Host string `yaml:"host"`
				Port int    `yaml:"port"`
			} `yaml:"http"`
		}
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if cfg.HTTP.Port == 0 {
			t.Fatalf("%s has no http.port", path)
		}
		want = append(want, fmt.Sprintf("%s:%d", cfg.HTTP.Host, cfg.HTTP.Port))
	}
	b, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &prom); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName != "walrus" {
			continue
		}
		for _, st := range sc.StaticConfigs {
			got = append(got, st.Targets...)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("prometheus.yml walrus targets = %v, configs say %v", got, want)
	}
}
