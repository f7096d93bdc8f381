package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/cli/walrus-cli/internal/bench"
	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/status"
)

// Every subcommand against a real 3-node cluster (multi-process).
func TestCommandsAgainstCluster(t *testing.T) {
	needCluster(t)
	c := testcluster.Start(t, testcluster.Options{})
	leader, follower := c.Leader(), c.Follower()
	var all []string
	for _, n := range c.Nodes {
		all = append(all, n.ClientAddr)
	}
	addrs := strings.Join(all, ",")

	// one-shot commands, through a follower (it forwards) and the leader
	f, l := "--addr="+follower.ClientAddr, "--addr="+leader.ClientAddr
	expect(t, cli(t, f, "register", "logs"), 0, "OK\n")
	expect(t, cli(t, f, "put", "logs", "hello", "world"), 0, "OK\n")
	expect(t, cli(t, l, "put", "logs", "second"), 0, "OK\n")
	expect(t, cli(t, l, "get", "logs"), 0, "hello world\n")
	expect(t, cli(t, f, "get", "--wire", "logs"), 0, "OK second\n")
	expect(t, cli(t, f, "get", "logs"), 0, "EMPTY\n")
	r := cli(t, f, "state", "logs")
	var st status.State
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || st.Topic != "logs" {
		t.Fatalf("state: %s", r)
	}
	r = cli(t, f, "put", "bad/topic", "x") // refused before sending
	if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "invalid topic name") {
		t.Fatalf("invalid topic: %s", r)
	}
	r = cli(t, f, "do", "put", "bad/topic", "x") // the node's own answer
	if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "ERR ") {
		t.Fatalf("invalid topic sent anyway: %s", r)
	}

	// metrics | jq -e '.state == "Leader"' is true on the leader only
	if jq, err := exec.LookPath("jq"); err == nil {
		for _, n := range c.Nodes {
			cmd := exec.CommandContext(t.Context(), "sh", "-c", `"$CLI" --addr "$ADDR" metrics | "$JQ" -e '.state == "Leader"' >/dev/null`)
			cmd.Env = append(cleanEnv(), "CLI="+cliPath(), "ADDR="+n.ClientAddr, "JQ="+jq)
			err := cmd.Run()
			if isLeader := n.ID == leader.ID; isLeader != (err == nil) {
				t.Errorf("node %d (leader %d): jq check err = %v", n.ID, leader.ID, err)
			}
		}
	}

	// status: one row per node, exactly one leader, exit 0
	r = cli(t, "status", "--addrs", addrs)
	if r.code != 0 || strings.Count(r.stdout, "Leader") != 1 || strings.Count(r.stdout, "Follower") != 2 {
		t.Fatalf("status: %s", r)
	}
	r = cli(t, "status", "--addrs", addrs, "-o", "json")
	var rows []map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rows) != nil || len(rows) != 3 {
		t.Fatalf("status json: %s", r)
	}
	for _, row := range rows {
		if row["lag"] == nil || row["term"] == nil {
			t.Errorf("status row without lag/term: %v", row)
		}
	}

	// topics (the node's TOPICS extension)
	r = cli(t, f, "topics")
	if r.code != 0 || !strings.Contains(r.stdout, "logs") {
		t.Fatalf("topics: %s", r)
	}

	// watch, twice
	r = cli(t, l, "watch", "logs", "--interval", "50ms", "--count", "2")
	if r.code != 0 || strings.Count(r.stdout, `"topic": "logs"`) != 2 {
		t.Fatalf("watch: %s", r)
	}

	// the shell, scripted
	r = cliWith(t, runOpts{stdin: "put shelltopic a b c\nget shelltopic\nexit\n"}, f)
	if r.code != 0 || r.stdout != "OK\nOK a b c\n" {
		t.Fatalf("shell: %s", r)
	}

	// bench: produce over all nodes, consume, verify
	r = cli(t, "bench", "produce", "--addrs", addrs, "--messages", "20000", "--clients", "6", "--pipeline", "32", "--topics", "3", "--json")
	var pr bench.Report
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &pr) != nil || pr.Messages != 20000 {
		t.Fatalf("bench produce: %s", r)
	}
	r = cli(t, "bench", "consume", "--addrs", addrs, "--clients", "6", "--pipeline", "32", "--topics", "3", "--run", pr.Run)
	if r.code != 0 || !strings.Contains(r.stdout, "verified 20000 messages, 0 missing, 0 duplicates, 0 corrupt") {
		t.Fatalf("bench consume: %s", r)
	}
	t.Logf("3-node test cluster: produce %.0f msgs/s; consume:\n%s", pr.MsgsPerSec, r.stdout)
}
