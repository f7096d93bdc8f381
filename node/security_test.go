package node_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/protocol"
)

// rawConn is a client connection that sends protocol lines as they are.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, n *nodetest.Node) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", n.ClientAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) do(line string) string {
	r.t.Helper()
	if err := protocol.WriteFrame(r.c, []byte(line)); err != nil {
		r.t.Fatal(err)
	}
	f, err := protocol.ReadFrame(r.br, protocol.DefaultMaxFrameBytes)
	if err != nil {
		r.t.Fatalf("%s: %v", strings.Fields(line)[0], err)
	}
	return protocol.ParseReply(f).String()
}

func dialAs(t *testing.T, n *nodetest.Node, user, password string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, n.ClientAddr(), client.Options{User: user, Password: password, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func secureTweak(t *testing.T) func(*node.Config) {
	return nodetest.Secure(t, map[string]string{"writer": "writer-pw", "reader": "reader-pw"}, []acl.Spec{
		{Principal: "writer", Resource: "sec-*", Operations: []string{"read", "write", "create", "describe"}},
		{Principal: "writer", Resource: "group:g*", Operations: []string{"read", "describe"}},
		{Principal: "reader", Resource: "sec-*", Operations: []string{"read"}},
	})
}

// TestAuthRequiredAndFailures: before AUTH every command is refused and
// has no effect; wrong passwords are refused, counted and the third one
// closes the connection; the right one answers OK.
func TestAuthRequiredAndFailures(t *testing.T) {
	nodes := nodetest.StartCluster(t, 1, secureTweak(t))
	n := nodes[0]
	r := dialRaw(t, n)
	for _, line := range []string{"PUT sec-a hello", "REGISTER sec-b", "METRICS", "REMOVE_NODE 1"} {
		if got := r.do(line); !strings.HasPrefix(got, "ERR authentication required") {
			t.Fatalf("%s before AUTH: %q", line, got)
		}
	}
	for _, topic := range []string{"sec-a", "sec-b"} {
		if _, ok := n.Metadata().Topic(topic); ok {
			t.Fatalf("topic %s created by an unauthenticated client", topic)
		}
	}
	failures := func(reason string) float64 {
		return testutil.ToFloat64(n.Metrics().AuthFailures.WithLabelValues("client", reason))
	}
	if got := r.do("AUTH writer wrong"); !strings.HasPrefix(got, "ERR authentication failed") {
		t.Fatalf("wrong password: %q", got)
	}
	if got := r.do("AUTH nobody wrong"); !strings.HasPrefix(got, "ERR authentication failed") {
		t.Fatalf("unknown user: %q", got)
	}
	if got := r.do("AUTH writer wrong-again"); !strings.Contains(got, "closing the connection") {
		t.Fatalf("third failure: %q", got)
	}
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("connection not closed after 3 failures: %v", err)
	}
	if failures("bad_password") != 2 || failures("unknown_user") != 1 || failures("missing") != 4 {
		t.Fatalf("failure counters bad_password %v unknown_user %v missing %v", failures("bad_password"), failures("unknown_user"), failures("missing"))
	}
	r2 := dialRaw(t, n)
	if got := r2.do("AUTH writer writer-pw"); got != "OK" {
		t.Fatalf("right password: %q", got)
	}
	if got := r2.do("PUT sec-a hello"); got != "OK" {
		t.Fatalf("PUT after AUTH: %q", got)
	}
	// A client with a wrong password fails at Dial with a typed error.
	_, err := client.Dial(t.Context(), n.ClientAddr(), client.Options{User: "writer", Password: "nope"})
	if !errors.Is(err, client.ErrAuth) {
		t.Fatalf("Dial with a wrong password: %v", err)
	}
}

// TestACLsEnforced: an allowed user works for PUT/GET/FETCH/READ/ACK/
// REGISTER; a user without the right gets the documented ERR and nothing
// is stored; REMOVE_NODE needs admin on the cluster.
func TestACLsEnforced(t *testing.T) {
	nodes := nodetest.StartCluster(t, 1, secureTweak(t))
	n := nodes[0]
	ctx := t.Context()
	w := dialAs(t, n, "writer", "writer-pw")
	rd := dialAs(t, n, "reader", "reader-pw")
	admin := nodetest.Dial(t, n)

	mustOK := func(c *client.Client, line string) protocol.Reply {
		t.Helper()
		rep, err := c.DoLine(ctx, line)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return rep
	}
	denied := func(c *client.Client, line, want string) {
		t.Helper()
		rep, _ := c.DoLine(ctx, line)
		if got := rep.String(); got != "ERR not authorized: "+want {
			t.Fatalf("%s: got %q, want ERR not authorized: %s", line, got, want)
		}
	}

	mustOK(w, "REGISTER sec-t")
	mustOK(w, "PUT sec-t one")
	if rep := mustOK(w, "GET sec-t"); string(rep.Body) != "one" {
		t.Fatalf("GET: %s", rep.String())
	}
	f, err := w.Fetch(ctx, "sec-t", 0, 10)
	if err != nil || len(f.Entries) != 1 {
		t.Fatalf("FETCH: %+v %v", f, err)
	}
	rr, err := w.Read(ctx, "g1", "sec-t", 10, 30*time.Second)
	if err != nil || len(rr.Entries) != 1 {
		t.Fatalf("READ: %+v %v", rr, err)
	}
	if err := w.Ack(ctx, "g1", "sec-t", rr.Entries[0].Offset); err != nil {
		t.Fatalf("ACK: %v", err)
	}

	denied(rd, "PUT sec-t two", "reader may not write topic:sec-t")
	denied(w, "PUT other hello", "writer may not write topic:other")
	denied(rd, "REGISTER sec-new", "reader may not create topic:sec-new")
	denied(w, "READ h1 sec-t", "writer may not read group:h1")
	denied(w, "CREATE sec-opts rf=1", "writer may not admin topic:sec-opts")
	denied(w, "DELETE sec-t", "writer may not admin topic:sec-t")
	denied(w, "REMOVE_NODE 7", "writer may not admin cluster")
	denied(w, "METRICS", "writer may not describe cluster")
	// The reader may read what the writer wrote, and nothing it tried is
	// stored: the admin still sees exactly one entry, and no new topics.
	if f, err := rd.Fetch(ctx, "sec-t", 0, 10); err != nil || len(f.Entries) != 1 || f.Entries[0].Payload != "one" {
		t.Fatalf("reader FETCH: %+v %v", f, err)
	}
	if f, err := admin.Fetch(ctx, "sec-t", 0, 10); err != nil || len(f.Entries) != 1 {
		t.Fatalf("admin FETCH after refused writes: %+v %v", f, err)
	}
	for _, topic := range []string{"other", "sec-new", "sec-opts"} {
		if _, ok := n.Metadata().Topic(topic); ok {
			t.Fatalf("refused request created topic %s", topic)
		}
	}
	// Admin may REMOVE_NODE (of a node that is not a member: a no-op).
	mustOK(admin, "REMOVE_NODE 7")
	// A pipelined batch mixes allowed and denied requests in order.
	reps, err := w.Pipeline(ctx, []protocol.Request{
		{Command: protocol.CmdPut, Topic: "sec-t", Payload: []byte("two")},
		{Command: protocol.CmdPut, Topic: "zzz", Payload: []byte("no")},
		{Command: protocol.CmdPut, Topic: "sec-t", Payload: []byte("three")},
	})
	if err != nil || reps[0].Kind != protocol.ReplyOK || !reps[1].IsErr() || reps[2].Kind != protocol.ReplyOK {
		t.Fatalf("pipelined: %v %v", reps, err)
	}
}

// TestThreeNodeClusterWithAuth: a 3-node cluster with users and ACLs
// serves authenticated clients on every node (forwarded writes included).
func TestThreeNodeClusterWithAuth(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, secureTweak(t))
	ctx := t.Context()
	clients := make([]*client.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = dialAs(t, n, "writer", "writer-pw")
	}
	if _, err := clients[0].DoLine(ctx, "REGISTER sec-3"); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		if rep, err := c.DoLine(ctx, "PUT sec-3 from-"+string(rune('a'+i))); err != nil || rep.Kind != protocol.ReplyOK {
			t.Fatalf("PUT via node %d: %v %v", i+1, rep, err)
		}
	}
	for i, c := range clients {
		f, err := c.Fetch(ctx, "sec-3", 0, 10)
		if err != nil || len(f.Entries) != 3 {
			t.Fatalf("FETCH via node %d: %+v %v", i+1, f, err)
		}
	}
	if rep, _ := clients[1].DoLine(ctx, "PUT other x"); !strings.HasPrefix(rep.String(), "ERR not authorized") {
		t.Fatalf("ACL not applied on node 2: %s", rep.String())
	}
}

// TestSeedHealthCheckFrame: the seed's `nc` check (a METRICS frame, then
// the 4-byte length of the reply) works on a plaintext listener without
// auth, and still gets a framed reply (the ERR) on one with auth.
func TestSeedHealthCheckFrame(t *testing.T) {
	open := nodetest.StartCluster(t, 1, nil)[0]
	if got := dialRaw(t, open).do("METRICS"); !strings.HasPrefix(got, `{"id":1`) {
		t.Fatalf("METRICS on an open node: %q", got)
	}
	secured := nodetest.StartCluster(t, 1, secureTweak(t))[0]
	if got := dialRaw(t, secured).do("METRICS"); !strings.HasPrefix(got, "ERR authentication required") {
		t.Fatalf("METRICS on a secured node without AUTH: %q", got)
	}
}

// TestExposedListenerRefused: a non-loopback listener needs TLS or users
// unless security.insecure.
func TestExposedListenerRefused(t *testing.T) {
	cfg := nodetest.Config(1, t.TempDir())
	cfg.ClientHost = "0.0.0.0"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "security.insecure: true") || !strings.Contains(err.Error(), "client.host") {
		t.Fatalf("exposed client listener: %v", err)
	}
	cfg.Security.Insecure = true
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Security.Insecure, cfg.Security.TLS = false, true
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Security.TLS = false
	nodetest.Secure(t, nil, nil)(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg = nodetest.Config(1, t.TempDir())
	cfg.HTTPHost, cfg.HTTPPort = "10.1.2.3", 9100
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "http.host") {
		t.Fatalf("exposed http listener: %v", err)
	}
	cfg = nodetest.Config(1, t.TempDir())
	cfg.KafkaHost, cfg.KafkaPort = "0.0.0.0", 9092
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "kafka.host") {
		t.Fatalf("exposed kafka listener: %v", err)
	}
	cfg.KafkaPort = 0 // off: its host does not matter
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
