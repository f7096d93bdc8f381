package main

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/node/status"
)

// fakeCluster is three fake nodes whose METRICS describe one cluster: node 1
// leads, node 2 lags by 2 entries, node 3 is caught up. Their Raft
// addresses are their client ports minus one, so status can map them.
func fakeCluster(t *testing.T) []*fakeNode {
	t.Helper()
	nodes := []*fakeNode{startFake(t), startFake(t), startFake(t)}
	raft := map[string]string{}
	for i, n := range nodes {
		host, port, _ := net.SplitHostPort(n.addr)
		p, _ := strconv.Atoi(port)
		raft[strconv.Itoa(i+1)] = net.JoinHostPort(host, strconv.Itoa(p-1))
	}
	for i, n := range nodes {
		id := uint64(i + 1)
		n.setMetrics(func() status.Metrics {
			m := status.Metrics{
				ID: id, State: "Follower", CurrentTerm: 3, LastLogIndex: 7, LastApplied: 7,
				CurrentLeader: ptr(1),
				MembershipConfig: status.MembershipConfig{
					Nodes: []uint64{1, 2, 3}, Voters: []uint64{1, 2, 3}, Learners: []uint64{},
					Membership: status.Membership{Configs: [][]uint64{{1, 2, 3}}, Nodes: raft},
				},
			}
			switch id {
			case 1:
				m.State = "Leader"
				m.Replication = map[string]status.Replication{
					"2": {MatchIndex: 5, NextIndex: 6, Index: 5},
					"3": {MatchIndex: 7, NextIndex: 8, Index: 7},
				}
			case 2:
				m.LastLogIndex, m.LastApplied = 5, 5
			}
			return m
		})
	}
	return nodes
}

func addrList(nodes []*fakeNode, extra ...string) string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.addr)
	}
	return strings.Join(append(s, extra...), ",")
}

func TestStatusTable(t *testing.T) {
	nodes := fakeCluster(t)
	r := cli(t, "status", "--addrs", addrList(nodes))
	if r.code != 0 {
		t.Fatalf("healthy cluster: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	want := [][]string{
		{"NODE", "ADDR", "STATE", "TERM", "LEADER", "LAST_LOG_INDEX", "APPLIED", "LAG"},
		{"1", nodes[0].addr, "Leader", "3", "1", "7", "7", "0"},
		{"2", nodes[1].addr, "Follower", "3", "1", "5", "5", "2"},
		{"3", nodes[2].addr, "Follower", "3", "1", "7", "7", "0"},
	}
	if len(lines) != len(want) {
		t.Fatalf("want %d lines, got:\n%s", len(want), r.stdout)
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d: got %q, want %q", i, got, w)
		}
	}
}

func TestStatusDiscoversMembersAndReportsJSON(t *testing.T) {
	nodes := fakeCluster(t)
	r := cli(t, "--addr", nodes[1].addr, "status", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stderr, "guessed") {
		t.Fatalf("want exit 0 and a note that addresses were guessed: %s", r)
	}
	var rows []struct {
		Node  *uint64 `json:"node"`
		Addr  string  `json:"addr"`
		State string  `json:"state"`
		Lag   *uint64 `json:"lag"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r)
	}
	if len(rows) != 3 {
		t.Fatalf("want 3 rows: %s", r.stdout)
	}
	for i, row := range rows {
		if row.Node == nil || *row.Node != uint64(i+1) || row.Addr != nodes[i].addr || row.Lag == nil {
			t.Errorf("row %d: %+v", i, row)
		}
	}
	if *rows[1].Lag != 2 || rows[0].State != "Leader" {
		t.Errorf("rows: %s", r.stdout)
	}
}

func TestStatusFailsWhenANodeIsDown(t *testing.T) {
	nodes := fakeCluster(t)
	down := closedAddr(t)
	r := cli(t, "status", "--addrs", addrList(nodes, down))
	if r.code != 1 || !strings.Contains(r.stdout, "unreachable") || !strings.Contains(r.stderr, "1 of 4 node(s) unreachable") {
		t.Fatalf("want exit 1, an unreachable row and a summary on stderr: %s", r)
	}
	// no leader at all
	f := startFake(t)
	f.setMetrics(func() status.Metrics {
		return status.Metrics{ID: 1, State: "Candidate", CurrentTerm: 9}
	})
	r = cli(t, "status", "--addrs", f.addr)
	if r.code != 1 || !strings.Contains(r.stderr, "no node reports Leader") {
		t.Fatalf("candidate only: %s", r)
	}
}

func TestTopics(t *testing.T) {
	f := startFake(t)
	f.put("logs", "a")
	f.put("logs", "b")
	f.put("audit", "c")
	r := cli(t, "--addr", f.addr, "topics")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("topics table: %s", r)
	}
	if h := strings.Fields(lines[0]); h[0] != "topic" || h[1] != "current_segment" {
		t.Errorf("header %q", h)
	}
	if row := strings.Fields(lines[2]); row[0] != "logs" || !strings.Contains(lines[2], " 2 ") {
		t.Errorf("logs row %q", lines[2])
	}
	r = cli(t, "--addr", f.addr, "topics", "-o", "json")
	var objs []map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &objs) != nil || len(objs) != 2 {
		t.Fatalf("topics json: %s", r)
	}
	f.mu.Lock()
	f.noTopic = true
	f.mu.Unlock()
	r = cli(t, "--addr", f.addr, "topics")
	if r.code != 1 || !strings.Contains(r.stderr, "does not implement the TOPICS extension") {
		t.Fatalf("node without TOPICS: %s", r)
	}
}

func TestWatch(t *testing.T) {
	nodes := fakeCluster(t)
	r := cli(t, "watch", "--addrs", addrList(nodes), "--interval", "10ms", "--count", "3")
	if r.code != 0 || strings.Count(r.stdout, "Every 10ms: status") != 3 || strings.Count(r.stdout, "Leader") != 3 {
		t.Fatalf("watch status: %s", r)
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Fatalf("escape codes in piped output: %q", r.stdout)
	}
	nodes[0].put("logs", "x")
	r = cli(t, "--addr", nodes[0].addr, "watch", "logs", "--interval", "10ms", "--count", "2")
	if r.code != 0 || strings.Count(r.stdout, `"current_segment": 1`) != 2 {
		t.Fatalf("watch topic: %s", r)
	}
}

// A wrong guess (here node 1 lists the Raft addresses of 2 and 3 swapped, so
// the guessed client addresses are each other's) shows as an error row.
func TestStatusWrongGuessIsReported(t *testing.T) {
	nodes := fakeCluster(t)
	raft := map[string]string{}
	for i, n := range nodes {
		host, port, _ := net.SplitHostPort(n.addr)
		p, _ := strconv.Atoi(port)
		raft[strconv.Itoa(i+1)] = net.JoinHostPort(host, strconv.Itoa(p-1))
	}
	raft["2"], raft["3"] = raft["3"], raft["2"]
	nodes[0].setMetrics(func() status.Metrics {
		return status.Metrics{ID: 1, State: "Leader", CurrentTerm: 3, CurrentLeader: ptr(1),
			MembershipConfig: status.MembershipConfig{Membership: status.Membership{Nodes: raft}}}
	})
	r := cli(t, "--addr", nodes[0].addr, "status")
	if r.code != 1 || strings.Count(r.stdout, "answers as node") != 2 {
		t.Fatalf("want two rows saying the guess was wrong: %s", r)
	}
}
