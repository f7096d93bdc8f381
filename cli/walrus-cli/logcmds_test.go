package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/status"
)

// fakeWithLog starts a fake node whose topic logs holds payloads
// (offset n appended at fakeBaseMs + n s).
func fakeWithLog(t *testing.T, payloads ...string) *fakeNode {
	t.Helper()
	f := startFake(t)
	f.mu.Lock()
	f.topics["logs"] = nil
	f.mu.Unlock()
	for _, p := range payloads {
		f.put("logs", p)
	}
	return f
}

func rfc3339(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

func TestLogOneShotCommands(t *testing.T) {
	f := fakeWithLog(t, "zero", "one <&>", "two\ttabbed")
	a := "--addr=" + f.addr
	expect(t, cli(t, a, "offsets", "logs"), 0, `{"topic":"logs","earliest":0,"latest":3}`+"\n")
	expect(t, cli(t, a, "--pretty", "offsets", "logs"), 0, "{\n  \"topic\": \"logs\",\n  \"earliest\": 0,\n  \"latest\": 3\n}\n")

	expect(t, cli(t, a, "seek", "logs", fmt.Sprint(fakeBaseMs+500)), 0, "1\n")
	expect(t, cli(t, a, "seek", "logs", rfc3339(fakeBaseMs+2000)), 0, "2\n")
	expect(t, cli(t, a, "seek", "logs", "2026-12-04T21:00:00.5+01:00"), 0, "3\n")
	if f.sentWith("SEEK logs 1796414400500") != 1 {
		t.Fatalf("RFC 3339 with offset and fraction not converted to Unix ms: %q", f.logRequests())
	}

	expect(t, cli(t, a, "fetch", "logs", "1", "--max", "1"), 0,
		`{"topic":"logs","next":2,"entries":[{"offset":1,"timestamp_ms":1764111112000,"payload":"one <&>"}]}`+"\n")
	r := cli(t, a, "fetch", "logs", "0")
	var page status.Fetch
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &page) != nil || page.Next != 3 || len(page.Entries) != 3 || page.Entries[2].Payload != "two\ttabbed" {
		t.Fatalf("fetch from 0: %s", r)
	}
	expect(t, cli(t, a, "fetch", "logs", "3"), 0, `{"topic":"logs","next":3,"entries":[]}`+"\n")
	if f.sentWith("FETCH logs 0") != 1 || f.sentWith("FETCH logs 1 1") != 1 {
		t.Fatalf("--max must be sent only when given: %q", f.logRequests())
	}

	expect(t, cli(t, a, "committed", "billing", "logs"), 0, `{"group":"billing","topic":"logs","offset":-1,"lag":3,"skipped":0}`+"\n")
	expect(t, cli(t, a, "commit", "billing", "logs", "2"), 0, "OK\n")
	expect(t, cli(t, a, "committed", "billing", "logs"), 0, `{"group":"billing","topic":"logs","offset":2,"lag":1,"skipped":0}`+"\n")

	expect(t, cli(t, a, "groups", "nothing-here"), 1, "") // unknown topic: ERR
	f.mu.Lock()
	f.topics["empty"] = nil
	f.mu.Unlock()
	expect(t, cli(t, a, "groups", "empty"), 0, "no groups\n")
	expect(t, cli(t, a, "groups", "empty", "-o", "json"), 0, "[]\n")
	r = cli(t, a, "groups")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "GROUP TOPIC OFFSET LAG PENDING" ||
		strings.Join(strings.Fields(lines[1]), " ") != "billing logs 2 1 0" {
		t.Fatalf("groups table: %s", r)
	}
	expect(t, cli(t, a, "groups", "logs", "-o", "json"), 0, `[{"group":"billing","topic":"logs","offset":2,"lag":1,"pending":0,"skipped":0}]`+"\n")
}

func TestLogCommandsBadInput(t *testing.T) {
	f := fakeWithLog(t, "zero")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string // substring
	}{
		{"offsets without topic", []string{"offsets"}, 2, "needs TOPIC"},
		{"offsets two topics", []string{"offsets", "a", "b"}, 2, "needs TOPIC"},
		{"offsets bad topic", []string{"offsets", "a/b"}, 2, "invalid topic name"},
		{"offsets unknown topic", []string{"offsets", "nope"}, 1, "ERR unknown topic nope"},
		{"seek without time", []string{"seek", "logs"}, 2, "needs TOPIC and TIME"},
		{"seek bad time", []string{"seek", "logs", "yesterday"}, 2, `TIME "yesterday" is neither Unix milliseconds nor an RFC 3339 time`},
		{"seek negative", []string{"seek", "--", "logs", "-5"}, 2, "before 1970"},
		{"fetch without offset", []string{"fetch", "logs"}, 2, "needs TOPIC and OFFSET"},
		{"fetch word offset", []string{"fetch", "logs", "first"}, 2, `OFFSET "first" is not an offset`},
		{"fetch negative offset", []string{"fetch", "logs", "-1"}, 2, "unknown shorthand flag"},
		{"fetch max too big", []string{"fetch", "logs", "0", "--max", "10001"}, 2, "--max 10001 is not in 1..10000"},
		{"fetch max not a number", []string{"fetch", "logs", "0", "--max", "many"}, 2, "invalid argument"},
		{"fetch past the end", []string{"fetch", "logs", "7"}, 1, "ERR offset 7 is past the end"},
		{"commit without offset", []string{"commit", "g", "logs"}, 2, "needs GROUP, TOPIC and OFFSET"},
		{"commit float offset", []string{"commit", "g", "logs", "1.5"}, 2, `OFFSET "1.5" is not an offset`},
		{"commit bad group", []string{"commit", "a b", "logs", "1"}, 2, "must be one non-empty word"},
		{"committed without topic", []string{"committed", "g"}, 2, "needs GROUP and TOPIC"},
		{"committed unknown topic", []string{"committed", "g", "nope"}, 1, "ERR unknown topic nope"},
		{"groups two topics", []string{"groups", "a", "b"}, 2, "at most one TOPIC"},
		{"groups bad output", []string{"groups", "-o", "yaml"}, 2, "yaml"},
		{"consume without topic", []string{"consume"}, 2, "needs TOPIC"},
		{"consume bad from", []string{"consume", "logs", "--from", "yesterday"}, 2, `--from "yesterday" is not earliest, latest, an offset or an RFC 3339 time`},
		{"consume negative from", []string{"consume", "logs", "--from", "-3"}, 2, "is not earliest"},
		{"consume ack-wait without group", []string{"consume", "logs", "--ack-wait", "1s"}, 2, "--ack-wait needs --group"},
		{"consume negative count", []string{"consume", "logs", "--count", "-1"}, 2, "--count must not be negative"},
		{"consume bad max", []string{"consume", "logs", "--max", "-1"}, 2, "--max -1"},
		{"consume bad poll", []string{"consume", "logs", "--poll", "0s"}, 2, "--poll must be positive"},
		{"consume bad topic", []string{"consume", "a/b", "--count", "1"}, 2, "invalid topic name"},
		{"consume unknown topic", []string{"consume", "nope", "--group", "g"}, 1, "ERR unknown topic nope"},
		{"consume unknown topic no group", []string{"consume", "nope"}, 1, "ERR unknown topic nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, append([]string{"--addr", f.addr}, tc.args...)...)
			if r.code != tc.code || r.stdout != "" || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("want exit %d, no stdout, stderr containing %q; got\n%s", tc.code, tc.stderr, r)
			}
		})
	}
	// Nothing with bad arguments reached the node as a mutation.
	if n := f.sentWith("COMMIT "); n != 0 {
		t.Fatalf("%d COMMITs sent: %q", n, f.logRequests())
	}
}

func TestLogCommandsUnreachable(t *testing.T) {
	down := closedAddr(t)
	for _, args := range [][]string{{"offsets", "logs"}, {"consume", "logs"}, {"consume", "--group", "g", "logs"}, {"groups"}} {
		r := cli(t, append([]string{"--addr", down}, args...)...)
		if r.code != 3 || !strings.Contains(r.stderr, "cannot reach "+down) {
			t.Fatalf("%v: want exit 3 naming %s, got\n%s", args, down, r)
		}
	}
	silent := silentListener(t)
	r := cli(t, "--addr", silent, "--timeout", "300ms", "consume", "--group", "g", "logs")
	if r.code != 4 || !strings.Contains(r.stderr, "timed out talking to "+silent) {
		t.Fatalf("silent node: want exit 4, got\n%s", r)
	}
}
