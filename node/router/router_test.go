package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/rpc"
	"github.com/walrus-go/walrus/node/wire"
)

// fakeLeader is the Raft leader's side: it applies creations straight to
// the FSM, with node 1 leading every new topic.
type fakeLeader struct {
	fsm     *metadata.FSM
	created []string
}

func (l *fakeLeader) CreateTopic(_ context.Context, topic string, rf, ack int) error {
	l.created = append(l.created, fmt.Sprintf("%s rf=%d ack=%d", topic, rf, ack))
	return l.fsm.ApplyCommand(metadata.CreateTopic{Topic: topic, Leader: 1}).Err
}
func (l *fakeLeader) Get(context.Context, *wire.GetRequest) ([][]byte, bool, error) {
	return nil, false, nil
}
func (l *fakeLeader) CatchUp(context.Context) error { return nil }
func (l *fakeLeader) LiveVoters() ([]uint64, error) { return []uint64{1, 2}, nil }

// fakeAppender is node 1's own segment: it may refuse with an error once.
type fakeAppender struct {
	mu       sync.Mutex
	got      [][]byte
	refuse   error
	onRefuse func()
}

func (a *fakeAppender) Append(_ context.Context, _ string, entries [][]byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.refuse; err != nil {
		a.refuse = nil
		if a.onRefuse != nil {
			a.onRefuse()
		}
		return err
	}
	a.got = append(a.got, entries...)
	return nil
}

type fakeForwarder struct {
	mu  sync.Mutex
	got map[uint64][][]byte
	id  uint64
	err error
}

func (f *fakeForwarder) AppendPartsAsync(_ string, parts [][][]byte, cb func(error)) {
	f.mu.Lock()
	if f.err == nil {
		for _, p := range parts {
			f.got[f.id] = append(f.got[f.id], p...)
		}
	}
	err := f.err
	f.mu.Unlock()
	cb(err)
}

type harness struct {
	r      *Router
	fsm    *metadata.FSM
	leader *fakeLeader
	local  *fakeAppender
	fwd    *fakeForwarder
}

func newHarness(t *testing.T, autoCreate bool) *harness {
	t.Helper()
	h := &harness{fsm: metadata.NewFSM(), local: &fakeAppender{}, fwd: &fakeForwarder{got: map[uint64][][]byte{}}}
	h.leader = &fakeLeader{fsm: h.fsm}
	h.r = New(Config{Self: 1, AutoCreateTopics: autoCreate, ReplicationFactor: 3}, Deps{
		FSM: h.fsm, Leader: h.leader, Local: h.local,
		Peer: func(id uint64) Forwarder {
			h.fwd.mu.Lock()
			h.fwd.id = id
			h.fwd.mu.Unlock()
			return h.fwd
		},
		Metrics: metrics.New(1), Logger: slog.New(slog.DiscardHandler), Stopping: make(chan struct{}),
	})
	t.Cleanup(h.r.Close)
	return h
}

func entries(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, e := range s {
		out[i] = []byte(e)
	}
	return out
}

func TestPutAutoCreatesAndAppendsLocally(t *testing.T) {
	h := newHarness(t, true)
	if err := h.r.Put(t.Context(), "t", entries("a", "b")); err != nil {
		t.Fatal(err)
	}
	if len(h.leader.created) != 1 || len(h.local.got) != 2 || string(h.local.got[1]) != "b" {
		t.Fatalf("created %v, local %q", h.leader.created, h.local.got)
	}
}

func TestPutUnknownTopicWithoutAutoCreate(t *testing.T) {
	h := newHarness(t, false)
	err := h.r.Put(t.Context(), "nosuch", entries("a"))
	if !errors.Is(err, wire.ErrUnknownTopic) || len(h.leader.created) != 0 {
		t.Fatalf("err %v, created %v", err, h.leader.created)
	}
}

// TestPutFollowsTheLease: the local segment refuses (its lease moved to
// node 2), the metadata changes, and the retry is forwarded to node 2.
func TestPutFollowsTheLease(t *testing.T) {
	h := newHarness(t, true)
	if err := h.r.Put(t.Context(), "t", entries("first")); err != nil {
		t.Fatal(err)
	}
	h.local.refuse = &wire.NotLeaderError{Topic: "t", Segment: 1, Leader: 2}
	h.local.onRefuse = func() {
		if r := h.fsm.ApplyCommand(metadata.Rollover{Topic: "t", Segment: 1, Count: 1, NextLeader: 2}); r.Err != nil {
			t.Error(r.Err)
		}
	}
	if err := h.r.Put(t.Context(), "t", entries("second")); err != nil {
		t.Fatal(err)
	}
	if got := h.fwd.got[2]; len(got) != 1 || string(got[0]) != "second" {
		t.Fatalf("forwarded to node 2: %q", got)
	}
}

// TestForwardOutcomeUnknownIsNotRetried: a forwarded append that may have
// been stored is reported, not sent twice.
func TestForwardOutcomeUnknownIsNotRetried(t *testing.T) {
	h := newHarness(t, true)
	if r := h.fsm.ApplyCommand(metadata.CreateTopic{Topic: "far", Leader: 2}); r.Err != nil {
		t.Fatal(r.Err)
	}
	h.fwd.err = rpc.ErrTimeout
	err := h.r.Put(t.Context(), "far", entries("x"))
	if !errors.Is(err, rpc.ErrTimeout) {
		t.Fatalf("err = %v, want the timeout", err)
	}
}

func TestConcurrentPutsKeepOrderPerTopic(t *testing.T) {
	h := newHarness(t, true)
	if r := h.fsm.ApplyCommand(metadata.CreateTopic{Topic: "far", Leader: 2}); r.Err != nil {
		t.Fatal(r.Err)
	}
	reqs := make([]protocol.Request, 50)
	for i := range reqs {
		reqs[i] = protocol.Request{Command: protocol.CmdPut, Topic: "far", Payload: fmt.Appendf(nil, "%02d", i)}
	}
	replies := make([]protocol.Reply, len(reqs))
	h.r.Puts(t.Context(), reqs, replies)
	for i, rep := range replies {
		if rep.Kind != protocol.ReplyOK {
			t.Fatalf("reply %d: %s", i, rep.String())
		}
	}
	got := h.fwd.got[2]
	for i, e := range got {
		if string(e) != fmt.Sprintf("%02d", i) {
			t.Fatalf("entry %d = %q: order lost", i, e)
		}
	}
}

func TestCreateArguments(t *testing.T) {
	h := newHarness(t, true)
	for _, c := range []struct {
		args []string
		want string // "" = OK
	}{
		{[]string{"a"}, ""},
		{[]string{"b", "rf=2", "ack=2"}, ""},
		{nil, "usage"},
		{[]string{"c", "rf=9"}, "rf=9: must be 1..7"},
		{[]string{"c", "ack=0"}, "ack=0: must be >= 1"},
		{[]string{"c", "rf=2", "ack=3"}, "ack=3: must be <= rf (2)"},
		{[]string{"c", "ack=4"}, "ack=4: must be <= rf (3)"},
		{[]string{"c", "speed=9"}, "invalid argument"},
		{[]string{"c", "rf=3", "ack=1"}, "ack quorum 1 with a replication factor above 1"},
		{[]string{"c", "ack=1"}, "rf=3 ack=1"},
		{[]string{"d", "rf=1", "ack=1"}, ""},
		{[]string{"bad topic!"}, "ERR"},
	} {
		rep := h.r.Create(t.Context(), c.args)
		if c.want == "" {
			if rep.Kind != protocol.ReplyOK {
				t.Errorf("CREATE %v: %s", c.args, rep.String())
			}
			continue
		}
		if rep.Kind != protocol.ReplyErr || !strings.Contains(rep.String(), c.want) {
			t.Errorf("CREATE %v = %q, want an error containing %q", c.args, rep.String(), c.want)
		}
	}
	if len(h.leader.created) != 3 || h.leader.created[1] != "b rf=2 ack=2" {
		t.Fatalf("created %v", h.leader.created)
	}
}
