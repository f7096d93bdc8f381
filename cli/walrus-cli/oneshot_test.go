package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/node/status"
)

func TestOneShotCommands(t *testing.T) {
	f := startFake(t)
	a := "--addr=" + f.addr
	expect(t, cli(t, a, "register", "logs"), 0, "OK\n")
	expect(t, cli(t, a, "put", "logs", "hello", "world"), 0, "OK\n")
	expect(t, cli(t, a, "put", "logs", "second  message"), 0, "OK\n")
	expect(t, cli(t, a, "get", "logs"), 0, "hello world\n")
	expect(t, cli(t, a, "get", "--wire", "logs"), 0, "OK second  message\n")
	expect(t, cli(t, a, "get", "logs"), 0, "EMPTY\n")
	expect(t, cli(t, a, "state", "logs"),
		0, `{"topic":"logs","current_segment":1,"leader_node":1,"sealed_segments":{},"segment_leaders":{"1":1}}`+"\n")
	expect(t, cli(t, a, "--pretty", "state", "logs"), 0, `{
  "topic": "logs",
  "current_segment": 1,
  "leader_node": 1,
  "sealed_segments": {},
  "segment_leaders": {
    "1": 1
  }
}
`)
	r := cli(t, a, "metrics")
	var m status.Metrics
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &m) != nil || m.State != "Leader" || r.stderr != "" {
		t.Fatalf("metrics must print pure JSON on stdout: %s", r)
	}
	// the seed's write health check
	expect(t, cli(t, a, "put", "health-check", "1764111111"), 0, "OK\n")
	// do sends any line and prints the reply as the protocol has it
	f.put("logs", "x y")
	expect(t, cli(t, a, "do", "get", "logs"), 0, "OK x y\n")
	expect(t, cli(t, a, "do", "GET", "logs"), 0, "EMPTY\n")
}

func TestAddrFromEnvironment(t *testing.T) {
	f := startFake(t)
	expect(t, cliWith(t, runOpts{env: []string{"WALRUS_ADDR=" + f.addr}}, "put", "t", "v"), 0, "OK\n")
	expect(t, cli(t, "--addr", f.addr, "get", "t"), 0, "v\n")
}

func TestErrReplyGoesToStderrWithExit1(t *testing.T) {
	f := startFake(t)
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"not leader", []string{"put", "readonly", "x"}, "ERR NotLeaderError: segment 1 of readonly is led by node 2\n"},
		{"unknown topic", []string{"state", "nope"}, "ERR unknown topic nope\n"},
		{"unknown command", []string{"do", "FROB", "x"}, "ERR unknown command FROB\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, append([]string{"--addr", f.addr}, tc.args...)...)
			if r.code != 1 || r.stdout != "" || r.stderr != tc.stderr {
				t.Fatalf("want exit 1, empty stdout, stderr %q; got\n%s", tc.stderr, r)
			}
		})
	}
}

func TestConnectionFailuresNameTheAddress(t *testing.T) {
	down := closedAddr(t)
	r := cli(t, "--addr", down, "metrics")
	if r.code != 3 || r.stdout != "" || !strings.Contains(r.stderr, "cannot reach "+down) {
		t.Fatalf("unreachable node: want exit 3 naming %s, got\n%s", down, r)
	}
	silent := silentListener(t)
	r = cli(t, "--addr", silent, "--timeout", "300ms", "get", "t")
	if r.code != 4 || r.stdout != "" || !strings.Contains(r.stderr, "timed out talking to "+silent) {
		t.Fatalf("silent node: want exit 4 naming %s, got\n%s", silent, r)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"put", "onlytopic"},
		{"put", "two words", "x"}, // would be PUT two "words x" on the wire
		{"get", ""},
		{"get"},
		{"get", "a", "b"},
		{"metrics", "extra"},
		{"frobnicate"},
		{"--no-such-flag"},
		{"status", "--output", "yaml"},
		{"bench", "produce", "--size", "3", "--echo"},
	} {
		r := cli(t, args...)
		if r.code != 2 || r.stdout != "" || r.stderr == "" {
			t.Errorf("%v: want exit 2 with a message on stderr, got\n%s", args, r)
		}
	}
}

// The seed's leader check, exactly as documented.
func TestMetricsPipedToJQ(t *testing.T) {
	jq, err := exec.LookPath("jq")
	if err != nil {
		t.Skip("jq not installed")
	}
	leader := startFake(t)
	follower := startFake(t)
	follower.setMetrics(func() status.Metrics {
		m := singleLeaderMetrics()
		m.State = "Follower"
		return m
	})
	check := func(addr string) int {
		cmd := exec.CommandContext(t.Context(), "sh", "-c", `"$CLI" --addr "$ADDR" metrics | "$JQ" -e '.state == "Leader"'`)
		cmd.Env = append(cleanEnv(), "CLI="+cliPath(), "ADDR="+addr, "JQ="+jq)
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	}
	if code := check(leader.addr); code != 0 {
		t.Errorf("leader: jq exit %d, want 0", code)
	}
	if code := check(follower.addr); code != 1 {
		t.Errorf("follower: jq exit %d, want 1", code)
	}
}
