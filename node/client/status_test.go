package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/status"
)

// docHandler answers STATE, METRICS and TOPICS with fixed bodies; a
// command it has no body for is unknown.
type docHandler map[string]string

func (h docHandler) Handle(_ context.Context, reqs []protocol.Request) []protocol.Reply {
	out := make([]protocol.Reply, len(reqs))
	for i, r := range reqs {
		body, ok := h[r.Command]
		if !ok {
			out[i] = protocol.UnknownCommand(r.Command)
			continue
		}
		out[i] = protocol.Raw([]byte(body))
	}
	return out
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDocs checks that each *Doc method decodes what the node builds from
// the same node/status type, and that the raw method returns it untouched.
func TestDocs(t *testing.T) {
	leader := uint64(2)
	metrics := status.Metrics{
		ID: 2, State: "Leader", CurrentTerm: 4, LastLogIndex: 9, LastApplied: 9, CurrentLeader: &leader,
		MembershipConfig: status.MembershipConfig{
			Nodes: []uint64{1, 2}, Voters: []uint64{1, 2}, Learners: []uint64{},
			Membership: status.Membership{Configs: [][]uint64{{1, 2}}, Nodes: map[string]string{"1": "127.0.0.1:1", "2": "127.0.0.1:2"}},
		},
		Replication:     map[string]status.Replication{"1": {MatchIndex: 8, NextIndex: 9, Index: 8}},
		UnderReplicated: 1, UnderReplicatedSegments: []status.UnderReplicated{{Topic: "logs", Segment: 3, Replicas: []uint64{1, 2}, Missing: []uint64{1}}},
	}
	state := status.State{
		Topic: "logs", CurrentSegment: 3, LeaderNode: 2,
		SealedSegments: map[string]uint64{"1": 10, "2": 5}, SegmentLeaders: map[string]uint64{"1": 1, "2": 2, "3": 2},
		SealedOffset: 15, Epoch: 1, ReplicationFactor: 2, AckQuorum: 2,
		UnderReplicated: map[string][]uint64{"3": {1}},
	}
	state.Cursor.Segment, state.Cursor.Offset = 1, 4
	topics := []status.TopicSummary{{Topic: "audit", CurrentSegment: 1, LeaderNode: 1}, {Topic: "logs", CurrentSegment: 3, LeaderNode: 2, SealedSegments: 2, Entries: 17}}
	h := docHandler{
		protocol.CmdMetrics: mustJSON(t, metrics),
		protocol.CmdState:   mustJSON(t, state),
		"TOPICS":            " " + mustJSON(t, topics) + "\n", // raw keeps the bytes
	}
	ctx := t.Context()
	c := dial(t, startServer(t, h), client.Options{})

	tests := []struct {
		name string
		doc  func() (any, error)
		raw  func() (json.RawMessage, error)
		want any
		body string
	}{
		{"metrics", func() (any, error) { return c.MetricsDoc(ctx) }, func() (json.RawMessage, error) { return c.Metrics(ctx) }, metrics, h[protocol.CmdMetrics]},
		{"state", func() (any, error) { return c.StateDoc(ctx, "logs") }, func() (json.RawMessage, error) { return c.State(ctx, "logs") }, state, h[protocol.CmdState]},
		{"topics", func() (any, error) { return c.TopicsDoc(ctx) }, func() (json.RawMessage, error) { return c.TopicsJSON(ctx) }, topics, h["TOPICS"]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.doc()
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("doc = %+v, %v\nwant %+v", got, err, tt.want)
			}
			raw, err := tt.raw()
			if err != nil || string(raw) != tt.body {
				t.Errorf("raw = %q, %v, want %q", raw, err, tt.body)
			}
		})
	}
}

func TestDocErrors(t *testing.T) {
	ctx := t.Context()
	c := dial(t, startServer(t, docHandler{
		protocol.CmdMetrics: `{"id":1,"state":"Leader","current_term":"three"}`,
		protocol.CmdState:   `[1,2]`,
	}), client.Options{})

	// A field of the wrong type: ErrUnexpectedReply, with the decoder's
	// error and whatever did decode.
	m, err := c.MetricsDoc(ctx)
	if !errors.Is(err, client.ErrUnexpectedReply) {
		t.Errorf("MetricsDoc err = %v, want ErrUnexpectedReply", err)
	}
	if _, ok := errors.AsType[*json.UnmarshalTypeError](err); !ok || m.ID != 1 || m.State != "Leader" {
		t.Errorf("MetricsDoc = %+v, %v; want the fields that matched and a *json.UnmarshalTypeError", m, err)
	}
	if _, err := c.StateDoc(ctx, "logs"); !errors.Is(err, client.ErrUnexpectedReply) {
		t.Errorf("StateDoc of an array: err = %v, want ErrUnexpectedReply", err)
	}
	// A node without the TOPICS extension answers ERR.
	_, err = c.TopicsDoc(ctx)
	if se, ok := errors.AsType[*client.ServerError](err); !ok || se.Message != "unknown command TOPICS" {
		t.Errorf("TopicsDoc on a node without TOPICS: %v", err)
	}
	// The client still works after all of these.
	if _, err := c.Metrics(ctx); err != nil {
		t.Errorf("Metrics after decode errors: %v", err)
	}
}
