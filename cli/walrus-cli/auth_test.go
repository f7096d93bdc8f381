package main

import (
	"strings"
	"testing"

	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/auth"
	"github.com/walrus-go/walrus/node/nodetest"
)

// TestUserHashRoundTrips: the printed hash, alone on one line, verifies
// the password it was made from (from standard input and from
// WALRUS_PASSWORD) and no other.
func TestUserHashRoundTrips(t *testing.T) {
	for name, o := range map[string]runOpts{
		"stdin": {stdin: "pa55word\n"},
		"env":   {env: []string{"WALRUS_PASSWORD=pa55word"}, stdin: "ignored\n"},
	} {
		t.Run(name, func(t *testing.T) {
			r := cliWith(t, o, "user", "hash")
			if r.code != 0 || r.stderr != "" || strings.Count(r.stdout, "\n") != 1 {
				t.Fatalf("user hash: %s", r)
			}
			c, c512, err := auth.ParseHash(strings.TrimSuffix(r.stdout, "\n"))
			if err != nil || c512 == nil {
				t.Fatalf("%v (SCRAM-SHA-512 part %v)", err, c512)
			}
			for _, k := range []auth.Credential{c, *c512} {
				if !k.Verify("pa55word") || k.Verify("ignored") {
					t.Fatal("hash does not verify its password (or verifies another)")
				}
			}
		})
	}
	if r := cliWith(t, runOpts{stdin: ""}, "user", "hash"); r.code != 2 || !strings.Contains(r.stderr, "empty password") {
		t.Fatalf("empty password: %s", r)
	}
}

// TestUserFlagAgainstAuthNode: --user with WALRUS_PASSWORD authenticates
// every subcommand; without it the node refuses; a wrong password and a
// missing one fail clearly.
func TestUserFlagAgainstAuthNode(t *testing.T) {
	nodes := nodetest.StartCluster(t, 1, nodetest.Secure(t, map[string]string{"app": "app-pw"}, []acl.Spec{
		{Principal: "app", Resource: "*", Operations: []string{"read", "write", "create", "describe"}},
	}))
	a := "--addr=" + nodes[0].ClientAddr()
	env := runOpts{env: []string{"WALRUS_PASSWORD=app-pw"}}
	expect(t, cliWith(t, env, a, "--user", "app", "put", "cli-auth", "hello"), 0, "OK\n")
	expect(t, cliWith(t, env, a, "--user", "app", "get", "cli-auth"), 0, "hello\n")
	if r := cliWith(t, env, a, "--user", "app", "metrics"); r.code != 0 || !strings.Contains(r.stdout, `"state"`) {
		t.Fatalf("metrics: %s", r)
	}
	if r := cliWith(t, env, "--user", "app", "status", "--addrs", nodes[0].ClientAddr()); r.code != 0 {
		t.Fatalf("status: %s", r)
	}
	if r := cliWith(t, runOpts{stdin: "PUT cli-auth two\n", env: env.env}, a, "--user", "app"); r.code != 0 || !strings.Contains(r.stdout, "OK") {
		t.Fatalf("shell: %s", r)
	}
	if r := cliWith(t, env, a, "--user", "app", "bench", "produce", "--topics", "1", "--messages", "200", "--clients", "2", "--topic-prefix", "cli-bench"); r.code != 0 {
		t.Fatalf("bench produce: %s", r)
	}
	if r := cli(t, a, "put", "cli-auth", "x"); r.code != 1 || !strings.Contains(r.stderr, "authentication required") {
		t.Fatalf("no --user: %s", r)
	}
	bad := runOpts{env: []string{"WALRUS_PASSWORD=wrong"}}
	if r := cliWith(t, bad, a, "--user", "app", "get", "cli-auth"); r.code == 0 || !strings.Contains(r.stderr, "refused") || strings.Contains(r.stderr, "wrong") {
		t.Fatalf("wrong password: %s", r)
	}
	if r := cli(t, a, "--user", "app", "get", "cli-auth"); r.code != 2 || !strings.Contains(r.stderr, "WALRUS_PASSWORD") {
		t.Fatalf("no password source: %s", r)
	}
}
