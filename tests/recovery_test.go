package tests

import (
	"reflect"
	"testing"
)

// recovery: stop the whole cluster with SIGTERM (each node must exit 0),
// restart it from disk: topics, segments, data and cursors are back and GET
// continues where it was.
func TestRecovery(t *testing.T) {
	skipShort(t)
	c := startRollCluster(t)
	written := writeRolled(t, c, "recover", 4)
	open := seq("recover-open", 0, rollEntries/2) // stays in the open segment
	putMany(t, c.Conn(2), "recover", open)
	written = append(written, open...)
	mustOK(t, c.Conn(1), "REGISTER recover-empty")

	half := len(written) / 2
	conn := c.Conn(3)
	var readBefore []string
	for range half {
		r := do(t, conn, "GET recover")
		if len(r) < 3 || r[:3] != "OK " {
			t.Fatalf("GET: %q", r)
		}
		readBefore = append(readBefore, r[3:])
	}
	sameList(t, "before restart", readBefore, written[:half])
	before, err := c.State(1, "recover")
	if err != nil {
		t.Fatal(err)
	}

	c.StopAll() // fails the test unless every node exits 0
	if t.Failed() {
		t.FailNow()
	}
	c.RestartAll()

	for _, id := range c.IDs() {
		after, err := c.State(id, "recover")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(after.SealedSegments, before.SealedSegments) || !reflect.DeepEqual(after.SegmentLeaders, before.SegmentLeaders) || after.CurrentSegment != before.CurrentSegment {
			t.Fatalf("node %d STATE after restart %+v, before %+v", id, after, before)
		}
		if _, err := c.State(id, "recover-empty"); err != nil {
			t.Fatalf("registered topic lost: %v", err)
		}
	}
	rest := drain(t, c.Conn(1), "recover", len(written))
	sameList(t, "GET after restart continues at the cursor", rest, written[half:])

	// The restarted cluster still takes writes.
	mustOK(t, c.Conn(2), "PUT recover after-restart")
	if r := do(t, c.Conn(3), "GET recover"); r != "OK after-restart" {
		t.Fatalf("GET after restart: %q", r)
	}
}
