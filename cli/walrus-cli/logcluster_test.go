package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/status"
)

// The log and topic-administration subcommands against a real cluster.
func TestLogAndAdminCommandsAgainstCluster(t *testing.T) {
	needCluster(t)
	c := testcluster.Start(t, testcluster.Options{})
	f := "--addr=" + c.Follower().ClientAddr
	expect(t, cli(t, f, "create", "audit", "max_entries=1000", "max_age_ms=86400000"), 0, "OK\n")
	for _, m := range []string{"one", "two", "three"} {
		expect(t, cli(t, f, "put", "audit", m), 0, "OK\n")
	}
	r := cli(t, f, "offsets", "audit")
	var off status.Offsets
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &off) != nil || off.Latest != 3 || off.Earliest != 0 {
		t.Fatalf("offsets: %s", r)
	}
	r = cli(t, f, "fetch", "audit", "1", "--max", "1")
	var fe status.Fetch
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &fe) != nil || len(fe.Entries) != 1 || fe.Entries[0].Payload != "two" || fe.Next != 2 {
		t.Fatalf("fetch: %s", r)
	}
	expect(t, cli(t, f, "seek", "audit", "0"), 0, "0\n")
	expect(t, cli(t, f, "consume", "--group", "billing", "audit", "--count", "2"), 0, "one\ntwo\n")
	expect(t, cli(t, f, "commit", "billing", "audit", "1"), 0, "OK\n")
	expect(t, cli(t, f, "committed", "billing", "audit"), 0, `{"group":"billing","topic":"audit","offset":1,"lag":2,"skipped":0}`+"\n")
	r = cli(t, f, "groups", "audit", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"group":"billing"`) {
		t.Fatalf("groups: %s", r)
	}
	expect(t, cli(t, f, "alter", "audit", "max_bytes=4096"), 0, "OK\n")
	r = cli(t, f, "state", "audit")
	var st status.State
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || st.Retention != (status.Retention{MaxAgeMs: 86400000, MaxBytes: 4096, MaxEntries: 1000}) {
		t.Fatalf("state after alter: %s", r)
	}
	if r = cli(t, f, "alter", "audit", "speed=9"); r.code != 1 || !strings.Contains(r.stderr, "unknown setting") {
		t.Fatalf("alter with a bad key: %s", r)
	}
	if r = cli(t, f, "alter", "audit", "oops"); r.code != 2 {
		t.Fatalf("alter without KEY=VALUE: %s", r)
	}
	expect(t, cli(t, f, "delete", "audit"), 0, "OK\n")
	if r = cli(t, f, "fetch", "audit", "0"); r.code != 1 || !strings.Contains(r.stderr, "unknown topic audit") {
		t.Fatalf("fetch after delete: %s", r)
	}
}
