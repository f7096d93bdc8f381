package tests

import (
	"slices"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/status"
)

// bad_input: malformed log commands over the wire get "ERR ..." (naming
// the usage where the arguments are wrong), unknown topics are not
// created by any log command, and the node keeps serving.
func testLogBadInput(t *testing.T, c *testcluster.Cluster) {
	const topic = "badlog"
	via := c.Follower().ID
	l := dialLog(t, c, via)
	putPayloads(t, l, topic, seq("b", 0, 5))
	usage := map[string]string{
		"OFFSETS":   "usage: OFFSETS <topic>",
		"SEEK":      "usage: SEEK <topic> <unix_ms>",
		"FETCH":     "usage: FETCH <topic> <offset> [max_entries]",
		"COMMIT":    "usage: COMMIT <group> <topic> <offset>",
		"COMMITTED": "usage: COMMITTED <group> <topic>",
		"READ":      "usage: READ <group> <topic> [max_entries] [ack_wait_ms]",
		"ACK":       "usage: ACK <group> <topic> <offset> [<offset>...]",
		"GROUPS":    "usage: GROUPS [<topic>]",
	}
	long := strings.Repeat("g", 300)
	usageCases := []string{
		"OFFSETS", "OFFSETS " + topic + " extra",
		"SEEK", "SEEK " + topic, "SEEK " + topic + " abc", "SEEK " + topic + " -5", "SEEK " + topic + " 1.5",
		"SEEK " + topic + " 1 2", "SEEK " + topic + " 99999999999999999999",
		"FETCH", "FETCH " + topic, "FETCH " + topic + " x", "FETCH " + topic + " -1", "FETCH " + topic + " 1e3",
		"FETCH " + topic + " 18446744073709551616", "FETCH " + topic + " 0 0", "FETCH " + topic + " 0 -1",
		"FETCH " + topic + " 0 10001", "FETCH " + topic + " 0 abc", "FETCH " + topic + " 0 10 extra",
		"COMMIT", "COMMIT g", "COMMIT g " + topic, "COMMIT g " + topic + " x", "COMMIT g " + topic + " -1",
		"COMMIT g " + topic + " 1 2", "COMMIT ../g " + topic + " 0", "COMMIT g/x " + topic + " 0", "COMMIT " + long + " " + topic + " 0",
		"COMMITTED", "COMMITTED g", "COMMITTED g " + topic + " x", "COMMITTED .. " + topic,
		"READ", "READ g", "READ g " + topic + " 0", "READ g " + topic + " 10001", "READ g " + topic + " -1",
		"READ g " + topic + " x", "READ g " + topic + " 10 0", "READ g " + topic + " 10 -1", "READ g " + topic + " 10 x",
		"READ g " + topic + " 10 43200001", "READ g " + topic + " 10 100 extra", "READ a/b " + topic,
		"ACK", "ACK g", "ACK g " + topic, "ACK g " + topic + " x", "ACK g " + topic + " -1", "ACK g " + topic + " 0 y",
		"ACK ../g " + topic + " 0", "ACK g " + topic + strings.Repeat(" 0", 10001),
		"GROUPS a b", "GROUPS ../x",
		"OFFSETS ../x", "FETCH a/b 0", "SEEK .. 0", "COMMITTED g ../x", "READ g a/b",
	}
	serving := func(after string) {
		t.Helper()
		var o status.Offsets
		l.json("OFFSETS "+topic, &o)
		if o.Latest != 5 {
			t.Fatalf("after %q: OFFSETS %s = %+v", after, topic, o)
		}
	}
	for _, line := range usageCases {
		r := l.do(line)
		cmd, _, _ := strings.Cut(line, " ")
		if !strings.HasPrefix(r, "ERR ") || !strings.Contains(r, usage[cmd]) {
			t.Errorf("%q: got %q, want ERR ... (%s)", abbrev(line), abbrev(r), usage[cmd])
		}
		serving(line)
	}

	// Well-formed requests the node must refuse, each with its message.
	exact := map[string]string{
		"FETCH " + topic + " 6":                   "ERR offset out of range (earliest 0, latest 5)",
		"FETCH " + topic + " 4611686018427387904": "ERR offset out of range (earliest 0, latest 5)",
		"COMMIT g " + topic + " 6":                "ERR offset out of range (earliest 0, latest 5)",
	}
	for line, want := range exact {
		if r := l.do(line); r != want {
			t.Errorf("%q: got %q, want %q", abbrev(line), r, want)
		}
		serving(line)
	}
	if r := l.do("FETCH " + topic + " 5"); r != "EMPTY" {
		t.Errorf("FETCH at latest: %q, want EMPTY", r)
	}
	// ACK of an offset never delivered (the group has read nothing), then
	// of one past what was delivered.
	if r := l.do("ACK fresh " + topic + " 0"); !strings.HasPrefix(r, "ERR ") || !strings.Contains(r, "never delivered") {
		t.Errorf("ACK before any READ: %q, want ERR ... never delivered", r)
	}
	if es, err := readGroup(l, "fresh", topic, 2, 0); err != nil || len(es) != 2 {
		t.Fatalf("READ fresh %s 2: %+v, %v", topic, es, err)
	}
	if r := l.do("ACK fresh " + topic + " 0 2"); !strings.HasPrefix(r, "ERR ") || !strings.Contains(r, "never delivered") {
		t.Errorf("ACK of a delivered and an undelivered offset: %q, want ERR ... never delivered", r)
	}
	if cm := committedOf(l, "fresh", topic); cm.Offset != -1 || cm.Lag != 5 {
		t.Errorf("COMMITTED after a refused ACK: %+v, want offset -1 (nothing acked) lag 5", cm)
	}
	l.ok("ACK fresh " + topic + " 0 1")
	if cm := committedOf(l, "fresh", topic); cm.Offset != 2 || cm.Lag != 3 {
		t.Errorf("COMMITTED after ACK 0 1: %+v, want offset 2 lag 3", cm)
	}
	l.ok("ACK fresh " + topic + " 0") // acked already: harmless

	// Unknown topics: every log command refuses and none creates it.
	unknown := map[string]string{
		"OFFSETS nosuch1":      "nosuch1",
		"SEEK nosuch2 0":       "nosuch2",
		"FETCH nosuch3 0":      "nosuch3",
		"FETCH nosuch4 0 10":   "nosuch4",
		"COMMIT g nosuch5 0":   "nosuch5",
		"COMMITTED g nosuch6":  "nosuch6",
		"READ g nosuch7":       "nosuch7",
		"READ g nosuch8 5 100": "nosuch8",
		"ACK g nosuch9 0":      "nosuch9",
		"GROUPS nosuch10":      "nosuch10",
	}
	for line, name := range unknown {
		if r := l.do(line); r != "ERR unknown topic "+name {
			t.Errorf("%q: got %q, want %q", line, r, "ERR unknown topic "+name)
		}
		serving(line)
	}
	for _, id := range c.IDs() {
		ln := dialLog(t, c, id)
		names := topicNames(ln)
		if !slices.Contains(names, topic) {
			t.Errorf("node %d TOPICS %v lacks %s", id, names, topic)
		}
		for _, name := range unknown {
			if slices.Contains(names, name) {
				t.Errorf("node %d: a log command created topic %s (TOPICS %v)", id, name, names)
			}
		}
	}
	// STATE of an unknown topic waits for a Raft catch-up (~250 ms): ask
	// each name once, rotating over the nodes.
	k := 0
	for _, name := range unknown {
		id := c.IDs()[k%3]
		k++
		if r := dialLog(t, c, id).do("STATE " + name); !strings.HasPrefix(r, "ERR ") {
			t.Errorf("node %d: STATE %s = %q, want ERR (never created)", id, name, abbrev(r))
		}
	}
	// The node still serves everything.
	l.ok("PUT " + topic + " b-after")
	if es := fetchAll(t, l, topic, 0, 100); len(es) != 6 || es[5].Payload != "b-after" {
		t.Errorf("FETCH after the bad input: %+v", es)
	}
	if !c.Running(via) {
		t.Fatalf("node %d died", via)
	}
}
