package cluster

import (
	"log/slog"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/wire"
)

// TestPausedNodeJudgesNobodyDead (issue 11, hole 7): a node resumed from
// a pause must not take its peers' silence (which was its own) for their
// death.
func TestPausedNodeJudgesNobodyDead(t *testing.T) {
	c := New(Config{Self: metadata.Node{ID: 1}, FailureTimeout: time.Second}, Deps{Logger: slog.New(slog.DiscardHandler)})
	now := time.Now()
	c.lastTick.Store(now.UnixNano())
	c.Record(&wire.Heartbeat{ID: 2})
	c.mu.Lock()
	p := c.peers[2]
	p.Seen = now.Add(-5 * time.Second) // silent for 5 failure timeouts...
	c.peers[2] = p
	c.mu.Unlock()
	if c.Alive(2) {
		t.Fatal("a peer silent for 5 s counts as alive although this node ran")
	}
	// ...because this node was stopped for 5 s: its watchdog did not run.
	c.lastTick.Store(now.Add(-5 * time.Second).UnixNano())
	if !c.Alive(2) {
		t.Fatal("a paused node judged a peer dead before its watchdog ran again")
	}
	c.tick(now)
	if !c.Alive(2) {
		t.Fatal("after the pause, the peer was not given a fresh failure timeout")
	}
	if seen, _ := c.LastSeen(2); now.Sub(seen) > time.Millisecond {
		t.Fatalf("peer's last seen %v not reset to the resume time", seen)
	}
}
