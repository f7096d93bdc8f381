package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/cli/walrus-cli/internal/bench"
	"github.com/walrus-go/walrus/internal/testcluster"
)

// bench topics against a real node: every phase answers every topic
// correctly, the report has the rates and the node's figures from /metrics.
func TestBenchTopicsAgainstNode(t *testing.T) {
	needCluster(t)
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, HTTP: true})
	n := c.Node(1)
	r := cli(t, "bench", "topics", "--addrs", n.ClientAddr, "--http", n.HTTPAddr, "--topics", "50",
		"--pipeline", "16", "--conns", "2", "--run", "cafe", "--stats-wait", "30s")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("bench topics: %s", r)
	}
	for _, want := range []string{
		"topics: 50 topics t0000cafe-0..49, one 44 B entry each, over 2 connection(s), pipeline 16",
		"run         0000cafe", "topics/s", "register ", "put ", "get ", "fetch ",
		"node 1 " + n.HTTPAddr + "*", "RSS/topic", "disk/topic", "snapshot",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, r.stdout)
		}
	}

	// --json and a given prefix. A second run on the same topics appends a
	// second entry: its GET gets it (the cursor moved past the first), but
	// FETCH at offset 0 gets the first run's entry, a wrong answer.
	r = cli(t, "bench", "topics", "--addrs", n.ClientAddr, "--http", n.HTTPAddr, "--topics", "20",
		"--prefix", "again", "--json", "--stats-wait", "30s")
	var rep bench.TopicsReport
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil {
		t.Fatalf("--json: %s", r)
	}
	if !rep.OK() || len(rep.Phases) != 4 || rep.Prefix != "again" || len(rep.Nodes) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	for _, p := range rep.Phases {
		if p.Done != 20 || p.PerSec <= 0 || p.Latency.Max <= 0 {
			t.Errorf("phase %+v", p)
		}
	}
	nd := rep.Nodes[0]
	if nd.Error != "" || nd.NodeID != "1" || !nd.IsLeader || nd.RSSBytes <= 0 || nd.DataDirBytes <= 0 || nd.Topics != 70 || nd.DataDirStale {
		t.Fatalf("node stats: %+v", nd)
	}
	r = cli(t, "bench", "topics", "--addrs", n.ClientAddr, "--topics", "20", "--prefix", "again")
	if r.code != 1 || !strings.Contains(r.stdout, "20 wrong") || !strings.Contains(r.stderr, "20 wrong answer(s); first: fetch again-") {
		t.Fatalf("second run on the same topics: %s", r)
	}
}

func TestBenchTopicsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--topics", "0"}, "topics = 0: must be in 1..1000000"},
		{[]string{"--pipeline", "0"}, "pipeline = 0: must be in 1..4096"},
		{[]string{"--conns", "0"}, "conns = 0: must be in 1..256"},
		{[]string{"--payload", "8"}, "payload = 8: must be in 44.."},
		{[]string{"--stats-wait", "-1s"}, "stats wait = -1s: must be in 0..10m"},
		{[]string{"--run", "xyz"}, `--run must be 1 to 8 hex digits, not "xyz"`},
		{[]string{"--prefix", "a b"}, `--prefix must be one word, not "a b"`},
		{[]string{"--topics", "many"}, `invalid argument "many" for "--topics"`},
	} {
		r := cli(t, append([]string{"--addr", closedAddr(t), "bench", "topics"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: want exit 2 and %q: %s", tc.args, tc.want, r)
		}
	}
	r := cli(t, "--addr", closedAddr(t), "bench", "topics", "--topics", "5")
	if r.code != 3 || !strings.Contains(r.stderr, "cannot reach") {
		t.Fatalf("unreachable: %s", r)
	}
}
