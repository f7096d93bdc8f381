package access_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/node/access"
	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/auth"
	"github.com/walrus-go/walrus/node/protocol"
)

func parse(t *testing.T, line string) protocol.Request {
	t.Helper()
	r, err := protocol.ParseRequest([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNeedsTable(t *testing.T) {
	exists := func(topic string) bool { return topic == "old" }
	for line, want := range map[string]string{
		"PUT old x":             "write topic:old",
		"PUT new x":             "write topic:new, create topic:new",
		"GET t":                 "read topic:t",
		"FETCH t 0":             "read topic:t",
		"OFFSETS t":             "read topic:t",
		"SEEK t 0":              "read topic:t",
		"READ g t":              "read topic:t, read group:g",
		"ACK g t 1":             "read topic:t, read group:g",
		"COMMIT g t 1":          "read topic:t, read group:g",
		"COMMITTED g t":         "describe topic:t, describe group:g",
		"GROUPS t":              "describe topic:t",
		"GROUPS":                "describe cluster",
		"REGISTER t":            "create topic:t",
		"CREATE t":              "create topic:t",
		"CREATE t rf=3":         "create topic:t, admin topic:t",
		"ALTER t max_bytes=1":   "admin topic:t",
		"DELETE t":              "admin topic:t",
		"STATE t":               "describe topic:t",
		"TOPICS":                "describe cluster",
		"METRICS":               "describe cluster",
		"REMOVE_NODE 2":         "admin cluster",
		"FETCH t notanoffset":   "", // malformed: the node rejects it
		"SOMETHING_UNKNOWN x y": "",
	} {
		var parts []string
		for _, n := range access.Needs(parse(t, line), true, exists) {
			parts = append(parts, fmt.Sprintf("%s %s", n.Op, n.Resource))
		}
		if got := strings.Join(parts, ", "); got != want {
			t.Errorf("%s: needs %q, want %q", line, got, want)
		}
	}
	if n := access.Needs(parse(t, "PUT new x"), false, exists); len(n) != 1 {
		t.Errorf("PUT without auto-create needs %v", n)
	}
}

func TestGuardHandleKeepsOrder(t *testing.T) {
	rules, err := acl.New([]acl.Spec{{Principal: "u", Resource: "ok-*", Operations: []string{"write"}}})
	if err != nil {
		t.Fatal(err)
	}
	g := &access.Guard{ACL: rules, Exists: func(string) bool { return true }}
	var passed []string
	next := func(_ context.Context, reqs []protocol.Request) []protocol.Reply {
		out := make([]protocol.Reply, len(reqs))
		for i, r := range reqs {
			passed = append(passed, r.Topic)
			out[i] = protocol.Payload([]byte(r.Topic))
		}
		return out
	}
	reqs := []protocol.Request{parse(t, "PUT ok-1 a"), parse(t, "PUT no b"), parse(t, "PUT ok-2 c")}
	got := g.Handle(auth.WithPrincipal(context.Background(), "u"), reqs, next)
	if got[0].String() != "OK ok-1" || got[1].String() != "ERR not authorized: u may not write topic:no" || got[2].String() != "OK ok-2" {
		t.Fatalf("replies %v", got)
	}
	if strings.Join(passed, ",") != "ok-1,ok-2" {
		t.Fatalf("denied request reached the node: %v", passed)
	}
	// Anonymous (no AUTH) is denied by default.
	got = g.Handle(context.Background(), reqs[:1], next)
	if got[0].String() != "ERR not authorized: ANONYMOUS may not write topic:ok-1" {
		t.Fatalf("anonymous: %v", got[0].String())
	}
}

func TestCheckExposure(t *testing.T) {
	var open access.Config
	for _, h := range []string{"127.0.0.1", "::1", "localhost"} {
		if err := open.CheckExposure("client.host", h); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	if err := open.CheckExposure("client.host", "0.0.0.0"); err == nil || !strings.Contains(err.Error(), "security.insecure: true") {
		t.Fatalf("0.0.0.0: %v", err)
	}
}

// TestGuardPartitionLogs: with Topic set, the partition log "T#p" is
// checked as topic T, so one rule covers a Kafka topic on both ports.
func TestGuardPartitionLogs(t *testing.T) {
	rules, err := acl.New([]acl.Spec{{Principal: "u", Resource: "logs", Operations: []string{"read"}}})
	if err != nil {
		t.Fatal(err)
	}
	split := func(log string) string { t, _, _ := strings.Cut(log, "#"); return t }
	g := &access.Guard{ACL: rules, Topic: split}
	if err := g.Check("u", parse(t, "FETCH logs#2 0")); err != nil {
		t.Fatalf("FETCH logs#2: %v", err)
	}
	if err := g.Check("u", parse(t, "FETCH other#1 0")); err == nil || !strings.Contains(err.Error(), "topic:other") {
		t.Fatalf("FETCH other#1: %v", err)
	}
	if err := (&access.Guard{ACL: rules}).Check("u", parse(t, "FETCH logs#2 0")); err == nil {
		t.Fatal("without Topic, logs#2 is its own resource")
	}
}
