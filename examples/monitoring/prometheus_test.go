package monitoring

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// prometheusBin returns the Prometheus server binary (Debian's prometheus
// package, which also provides promtool), with the same skip/fail policy
// as promtool.
func prometheusBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus not found but CI=true: .ci/run should have installed Debian's prometheus package")
		}
		t.Skip("prometheus not installed (apt-get install --no-install-recommends prometheus); skipping outside CI")
	}
	return p
}

// promServer is a real Prometheus scraping a test cluster.
type promServer struct {
	addr string
	cmd  *exec.Cmd
	log  string
}

// startPrometheus runs Prometheus with this directory's prometheus.yml,
// rewritten for the test: the cluster's HTTP addresses as targets, a 1s
// scrape and evaluation interval, alerts.yml by absolute path. It is
// killed at cleanup.
func startPrometheus(t *testing.T, c *testcluster.Cluster) *promServer {
	t.Helper()
	bin := prometheusBin(t)
	b, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, n := range c.Nodes {
		targets = append(targets, n.HTTPAddr)
	}
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	cfg["rule_files"] = []string{rules}
	scs, _ := cfg["scrape_configs"].([]any)
	if len(scs) != 1 {
		t.Fatalf("prometheus.yml: want one scrape config, got %d", len(scs))
	}
	sc := scs[0].(map[string]any)
	sc["static_configs"] = []any{map[string]any{"targets": targets}}

	dir := t.TempDir()
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
	p := &promServer{addr: "127.0.0.1:" + strconv.Itoa(testcluster.FreePorts(t, 1)[0]), log: filepath.Join(dir, "prometheus.log")}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+p.addr, "--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			t.Logf("---- prometheus log ----\n%s", testcluster.Tail(p.log, 40))
		}
	})
	testcluster.Eventually(t, clusterTimeout, func() error {
		_, err := scrapeErr(t, "http://"+p.addr+"/-/ready")
		return err
	})
	return p
}

// apiResponse is the envelope of Prometheus' HTTP API.
type apiResponse struct {
	Status string          `json:"status"`
	Error  string          `json:"error"`
	Data   json.RawMessage `json:"data"`
}

func (p *promServer) api(t *testing.T, path string, params url.Values) (json.RawMessage, error) {
	u := "http://" + p.addr + path
	if params != nil {
		u += "?" + params.Encode()
	}
	body, err := scrapeErr(t, u)
	if err != nil {
		return nil, err
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", path, r.Error)
	}
	return r.Data, nil
}

// query runs an instant query and returns how many series it produced.
func (p *promServer) query(t *testing.T, q string) (int, error) {
	data, err := p.api(t, "/api/v1/query", url.Values{"query": {q}})
	if err != nil {
		return 0, err
	}
	var v struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return 0, err
	}
	if v.ResultType == "scalar" {
		return 1, nil
	}
	return len(v.Result), nil
}

// checkWithPrometheus scrapes the running cluster with a real Prometheus
// and checks that every dashboard query returns data, every alert rule
// evaluates without error, and no alert fires on the healthy cluster.
func checkWithPrometheus(t *testing.T, c *testcluster.Cluster) {
	p := startPrometheus(t, c)

	testcluster.Eventually(t, clusterTimeout, func() error {
		n, err := p.query(t, `sum(up{job="walrus"}) == 3 and count(walrus_raft_term) == 3`)
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("prometheus does not see 3 walrus nodes up yet")
		}
		return nil
	})

	// Every dashboard query returns at least one series once there are two
	// samples of each counter (rates need two); those on consumer group
	// series only must run without error (the cluster has no group).
	for _, q := range dashboardQueries(t) {
		promQL := strings.NewReplacer("$__rate_interval", "10s", "$__interval", "5s", "$__range", "1h", "$job", "walrus").Replace(q)
		groupsOnly := true
		for _, n := range metricNameRE.FindAllString(q, -1) {
			groupsOnly = groupsOnly && perGroup(n)
		}
		testcluster.Eventually(t, clusterTimeout, func() error {
			n, err := p.query(t, promQL)
			if err != nil {
				return fmt.Errorf("%s: %w", promQL, err)
			}
			if n == 0 && !groupsOnly {
				return fmt.Errorf("dashboard query returns no data: %s", promQL)
			}
			return nil
		})
	}

	// Every rule was evaluated at least once without error, and nothing
	// fires on a healthy cluster.
	testcluster.Eventually(t, clusterTimeout, func() error {
		data, err := p.api(t, "/api/v1/rules", nil)
		if err != nil {
			return err
		}
		var v struct {
			Groups []struct {
				Rules []struct {
					Name           string    `json:"name"`
					Health         string    `json:"health"`
					LastError      string    `json:"lastError"`
					State          string    `json:"state"`
					LastEvaluation time.Time `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		n := 0
		for _, g := range v.Groups {
			for _, r := range g.Rules {
				n++
				if r.Health != "ok" {
					return fmt.Errorf("rule %s health %q: %s", r.Name, r.Health, r.LastError)
				}
				if r.State == "firing" {
					return fmt.Errorf("alert %s fires on a healthy cluster", r.Name)
				}
			}
		}
		if want := len(loadAlerts(t)); n != want {
			return fmt.Errorf("prometheus loaded %d rules, alerts.yml has %d", n, want)
		}
		return nil
	})
}
