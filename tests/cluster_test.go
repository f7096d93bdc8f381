package tests

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/protocol"
)

// TestCluster runs the checks that need a healthy 3-node cluster with the
// default segment size, sharing one cluster to keep the suite fast.
func TestCluster(t *testing.T) {
	skipShort(t)
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})

	t.Run("smoke", func(t *testing.T) { testSmoke(t, c) })
	t.Run("register_then_read_elsewhere", func(t *testing.T) { testRegisterThenReadElsewhere(t, c) })
	t.Run("metrics_and_state", func(t *testing.T) { testMetricsAndState(t, c) })
	t.Run("bad_input", func(t *testing.T) { testBadInput(t, c) })
	t.Run("health_check", func(t *testing.T) { testHealthCheck(t, c) })
	t.Run("pipelined", func(t *testing.T) { testPipelined(t, c) })
}

// smoke: register, 30 PUTs through the Raft leader, 30 GETs through
// another node, same order.
func testSmoke(t *testing.T, c *testcluster.Cluster) {
	leader, other := c.Leader(), c.Follower()
	lc, oc := c.Conn(leader.ID), c.Conn(other.ID)
	mustOK(t, lc, "REGISTER smoke")
	mustOK(t, oc, "REGISTER smoke") // idempotent, from any node
	want := seq("smoke message with spaces", 0, 30)
	putMany(t, lc, "smoke", want)
	got := drain(t, oc, "smoke", 100)
	sameList(t, "GET through a follower", got, want)
	if r := do(t, lc, "GET smoke"); r != "EMPTY" {
		t.Fatalf("GET on the leader after draining: %q, want EMPTY (one shared cursor)", r)
	}
	// PUT to a topic nobody registered creates it (the seed's health-check put).
	mustOK(t, oc, "PUT health-check 1700000000")
	if r := do(t, lc, "GET health-check"); r != "OK 1700000000" {
		t.Fatalf("GET health-check: %q", r)
	}
}

// A topic whose REGISTER was acknowledged exists for every later request,
// whichever node it reaches: GET and STATE on a follower right after
// REGISTER on the leader must not say "unknown topic".
func testRegisterThenReadElsewhere(t *testing.T, c *testcluster.Cluster) {
	l, f := c.Conn(c.Leader().ID), c.Conn(c.Follower().ID)
	for i := range 10 {
		topic := fmt.Sprintf("ryw-%d", i)
		mustOK(t, l, "REGISTER "+topic)
		if r := do(t, f, "GET "+topic); r != "EMPTY" {
			t.Fatalf("GET %s on a follower right after REGISTER on the leader: %q, want EMPTY", topic, r)
		}
		if r := do(t, f, "STATE "+topic); !strings.HasPrefix(r, "{") {
			t.Fatalf("STATE %s on a follower right after REGISTER: %q", topic, r)
		}
	}
}

func testMetricsAndState(t *testing.T, c *testcluster.Cluster) {
	leader := c.Leader()
	for _, id := range c.IDs() {
		// Raw JSON: every field of the seed must be there (listed here, not
		// taken from node/status, so that dropping one from the type fails),
		// with the right type (c.Metrics decodes into status.Metrics).
		raw := do(t, c.Conn(id), "METRICS")
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("node %d METRICS is not JSON: %v: %q", id, err, raw)
		}
		for _, k := range []string{"id", "state", "current_term", "vote", "last_log_index", "last_applied", "current_leader", "membership_config", "snapshot"} {
			if _, ok := m[k]; !ok {
				t.Errorf("node %d METRICS lacks %q: %s", id, k, raw)
			}
		}
		_, hasRepl := m["replication"]
		if id == leader.ID && !hasRepl {
			t.Errorf("leader METRICS lacks replication: %s", raw)
		}
		pm, err := c.Metrics(id)
		if err != nil {
			t.Fatal(err)
		}
		if pm.ID != id || pm.CurrentLeader == nil || *pm.CurrentLeader != leader.ID {
			t.Errorf("node %d METRICS: id %d leader %v, want leader %d", id, pm.ID, pm.CurrentLeader, leader.ID)
		}
		if id == leader.ID {
			if len(pm.Replication) != len(c.Nodes)-1 {
				t.Errorf("leader replication has %d entries, want one per follower: %s", len(pm.Replication), raw)
			}
			if pm.State != "Leader" {
				t.Errorf("leader state %q", pm.State)
			}
		} else if pm.State != "Follower" {
			t.Errorf("node %d state %q, want Follower", id, pm.State)
		}
	}
	mustOK(t, c.Conn(leader.ID), "REGISTER statetopic")
	for _, id := range c.IDs() {
		var s map[string]any
		testcluster.Eventually(t, 10*time.Second, func() error {
			raw, err := c.Conn(id).Do("STATE statetopic")
			if err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(raw), &s); err != nil {
				return fmt.Errorf("node %d STATE not JSON: %q", id, raw)
			}
			return nil
		})
		for _, k := range []string{"topic", "current_segment", "leader_node", "sealed_segments", "segment_leaders"} {
			if _, ok := s[k]; !ok {
				t.Errorf("node %d STATE lacks %q: %v", id, k, s)
			}
		}
		ps, err := c.State(id, "statetopic")
		if err != nil {
			t.Fatal(err)
		}
		if ps.Topic != "statetopic" {
			t.Errorf("node %d STATE topic = %q", id, ps.Topic)
		}
	}
}

// bad_input: every case of DESIGN.md section 5 against a live node, which
// then still answers.
func testBadInput(t *testing.T, c *testcluster.Cluster) {
	n := c.Follower()
	addr := n.ClientAddr
	dial := func(t *testing.T) *testcluster.Conn {
		conn := testcluster.MustDial(t, addr)
		conn.SetTimeout(3 * time.Second)
		return conn
	}

	t.Run("zero_length", func(t *testing.T) {
		conn := dial(t)
		if err := conn.WriteRaw(testcluster.FrameWithLength(0, nil)); err != nil {
			t.Fatal(err)
		}
		if r, err := conn.Recv(); err != nil || r != "ERR invalid frame length" {
			t.Fatalf("got %q, %v; want ERR invalid frame length", r, err)
		}
		if err := conn.ExpectClosed(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("oversized_length", func(t *testing.T) {
		for _, n := range []uint32{protocol.DefaultMaxFrameBytes + 1, 0xFFFFFFFF} {
			conn := dial(t)
			if err := conn.WriteRaw(testcluster.FrameWithLength(n, []byte("PUT x y"))); err != nil {
				t.Fatal(err)
			}
			if r, err := conn.Recv(); err != nil || r != "ERR invalid frame length" {
				t.Fatalf("length %d: got %q, %v", n, r, err)
			}
			if err := conn.ExpectClosed(); err != nil {
				t.Fatalf("length %d: %v", n, err)
			}
		}
	})
	// The remaining cases answer ERR and keep the connection usable.
	cases := []struct {
		name, frame, want string
		prefix            bool
	}{
		{"invalid_utf8", "PUT t \xff\xfe\xfd", "ERR invalid utf-8", false},
		{"invalid_utf8_command", "\xc3\x28", "ERR invalid utf-8", false},
		{"unknown_command", "FROBNICATE x", "ERR unknown command FROBNICATE", false},
		{"empty_command", "   ", "ERR ", true},
		{"put_no_args", "PUT", "ERR ", true},
		{"put_no_payload", "PUT sometopic", "ERR ", true},
		{"get_no_topic", "GET", "ERR ", true},
		{"register_no_topic", "REGISTER", "ERR ", true},
		{"state_no_topic", "STATE", "ERR ", true},
		{"register_two_topics", "REGISTER a b", "ERR ", true},
		{"metrics_with_args", "METRICS now", "ERR ", true},
		{"topic_dotdot_slash", "REGISTER ../x", "ERR invalid topic name", true},
		{"put_bad_topic", "PUT ../x payload", "ERR invalid topic name", true},
		{"get_bad_topic", "GET a/b", "ERR invalid topic name", true},
		{"state_bad_topic", "STATE ..", "ERR invalid topic name", true},
	}
	conn := dial(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := conn.Do(tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			if tc.prefix && !strings.HasPrefix(r, tc.want) || !tc.prefix && r != tc.want {
				t.Fatalf("%q: got %q, want %q", tc.frame, r, tc.want)
			}
			// Same connection still serves.
			if r, err := conn.Do("METRICS"); err != nil || !strings.HasPrefix(r, "{") {
				t.Fatalf("METRICS after %s: %q, %v", tc.name, r, err)
			}
		})
	}
	t.Run("disconnect_mid_frame", func(t *testing.T) {
		for _, raw := range [][]byte{
			{0x10, 0x00}, // half a length prefix
			testcluster.FrameWithLength(100, []byte("PUT midframe abc")), // body cut short
		} {
			conn := dial(t)
			if err := conn.WriteRaw(raw); err != nil {
				t.Fatal(err)
			}
			conn.Close()
		}
	})
	t.Run("still_serving", func(t *testing.T) {
		conn := dial(t)
		mustOK(t, conn, "PUT afterbad survived")
		if r := do(t, conn, "GET afterbad"); r != "OK survived" {
			t.Fatalf("GET afterbad: %q", r)
		}
		if !c.Running(n.ID) {
			t.Fatal("node died")
		}
		// The unknown topic of put_no_payload / midframe must not exist.
		if r := do(t, conn, "GET midframe"); r != "EMPTY" && !strings.HasPrefix(r, "ERR") {
			t.Fatalf("a cut-off frame was executed: GET midframe = %q", r)
		}
	})
}

// health_check: the seed's raw `printf '\x07\x00\x00\x00METRICS' | nc` and
// its length-6 variant get framed replies.
func testHealthCheck(t *testing.T, c *testcluster.Cluster) {
	addr := c.Node(1).ClientAddr
	for _, tc := range []struct {
		name string
		raw  string
		json bool
	}{
		{"len7", "\x07\x00\x00\x00METRICS", true},
		{"len6", "\x06\x00\x00\x00METRICS", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := nc.Write([]byte(tc.raw)); err != nil {
				t.Fatal(err)
			}
			body := readFramed(t, nc)
			if tc.json && !json.Valid(body) {
				t.Fatalf("reply is not JSON: %q", body)
			}
			if !tc.json && len(body) == 0 {
				t.Fatal("empty reply body")
			}
		})
	}
	t.Run("nc", func(t *testing.T) {
		if _, err := exec.LookPath("nc"); err != nil {
			t.Skip("nc not installed; the same bytes were sent from Go above")
		}
		if _, err := exec.LookPath("bash"); err != nil {
			t.Skip("bash not installed")
		}
		host, port, _ := net.SplitHostPort(addr)
		for _, line := range []string{
			fmt.Sprintf(`printf '\x07\x00\x00\x00METRICS' | nc %s %s`, host, port),
			fmt.Sprintf(`echo -ne '\x06\x00\x00\x00METRICS' | nc %s %s | head -c 4`, host, port),
		} {
			// nc keeps the connection open after stdin ends (the server
			// waits for the next frame), so bound it and keep what it read.
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			cmd := exec.CommandContext(ctx, "bash", "-c", line)
			cmd.WaitDelay = time.Second
			out, _ := cmd.Output()
			cancel()
			if len(out) < 4 {
				t.Fatalf("%s: got %q, want at least a 4-byte length prefix", line, out)
			}
			if strings.Contains(line, "head -c 4") {
				continue
			}
			n := binary.LittleEndian.Uint32(out[:4])
			if int(n) != len(out)-4 || !json.Valid(out[4:]) {
				t.Fatalf("%s: prefix %d, body %q", line, n, out[4:])
			}
		}
	})
}

func readFramed(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatalf("read length prefix: %v", err)
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n == 0 || n > 1<<24 {
		t.Fatalf("implausible reply length %d", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatalf("read %d-byte body: %v", n, err)
	}
	return body
}

// pipelined: many requests written back-to-back on one connection are
// answered in order.
func testPipelined(t *testing.T, c *testcluster.Cluster) {
	conn := c.Conn(c.Follower().ID)
	want := seq("pipe", 0, 200)
	var buf bytes.Buffer
	for _, p := range want {
		buf.Write(testcluster.Frame("PUT pipelined " + p))
	}
	buf.Write(testcluster.Frame("METRICS"))
	if err := conn.WriteRaw(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if r, err := conn.Recv(); err != nil || r != "OK" {
			t.Fatalf("reply %d: %q, %v", i, r, err)
		}
	}
	if r, err := conn.Recv(); err != nil || !strings.HasPrefix(r, "{") {
		t.Fatalf("METRICS after the PUTs: %q, %v", r, err)
	}
	buf.Reset()
	for range want {
		buf.Write(testcluster.Frame("GET pipelined"))
	}
	if err := conn.WriteRaw(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	for i, p := range want {
		if r, err := conn.Recv(); err != nil || r != "OK "+p {
			t.Fatalf("GET reply %d: %q, %v; want OK %s", i, r, err, p)
		}
	}
}
