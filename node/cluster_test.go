package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/cluster"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/status"
)

// countOf is a segment's entry count in a node's store.
func countOf(tn *nodetest.Node, topic string, seg uint64) (uint64, error) {
	info, err := tn.Store.Stat(context.Background(), engine.SegmentID{Topic: topic, Segment: seg})
	if errors.Is(err, engine.ErrNotFound) {
		return 0, nil
	}
	return info.Entries, err
}

// peerOf is what tn last heard from node id.
func peerOf(tn *nodetest.Node, id uint64) cluster.Progress {
	p, _ := tn.Peer(id)
	return p
}

func TestSingleNodeEndToEnd(t *testing.T) {
	nodes := nodetest.StartCluster(t, 1, nil)
	c := nodetest.Dial(t, nodes[0])
	ctx := t.Context()

	m := nodetest.Metrics(t, c)
	if m.State != "Leader" || m.CurrentLeader == nil || *m.CurrentLeader != 1 || m.ID != 1 {
		t.Fatalf("metrics = %+v", m)
	}
	if err := c.Register(ctx, "logs"); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctx, "logs"); err != nil {
		t.Fatalf("second register: %v", err)
	}
	for i := range 30 {
		if err := c.Put(ctx, "logs", fmt.Appendf(nil, "msg %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		p, ok, err := c.Get(ctx, "logs")
		if err != nil || !ok || string(p) != fmt.Sprintf("msg %d", i) {
			t.Fatalf("get %d = %q %v %v", i, p, ok, err)
		}
	}
	if _, ok, err := c.Get(ctx, "logs"); err != nil || ok {
		t.Fatalf("get past end: ok=%v err=%v", ok, err)
	}
	st := nodetest.State(t, c, "logs")
	if st.Topic != "logs" || st.CurrentSegment != 1 || st.LeaderNode != 1 || st.SegmentLeaders["1"] != 1 || st.SealedSegments == nil {
		t.Fatalf("state = %+v", st)
	}
	// PUT to an unknown topic creates it.
	if err := c.Put(ctx, "health-check", []byte("123")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ line, want string }{
		{"GET nosuch", "ERR unknown topic nosuch"},
		{"STATE nosuch", "ERR unknown topic nosuch"},
		{"FROB x", ""},
	} {
		r, err := c.DoLine(ctx, tc.line)
		if err != nil && !r.IsErr() {
			t.Fatal(err)
		}
		if !r.IsErr() || (tc.want != "" && r.String() != tc.want) {
			t.Fatalf("%s -> %q", tc.line, r.String())
		}
	}
	r, err := c.DoLine(ctx, "TOPICS")
	if err != nil {
		t.Fatal(err)
	}
	var topics []status.TopicSummary
	if err := json.Unmarshal(r.Body, &topics); err != nil || len(topics) != 2 || topics[1].Topic != "logs" || topics[1].Entries != 30 {
		t.Fatalf("TOPICS = %s (%v)", r.Body, err)
	}
}
