package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/server"
	"github.com/walrus-go/walrus/node/status"
)

// fakeNode is an in-process protocol server (node/server) with a small
// in-memory handler: topics are FIFO queues, GET pops, METRICS answers
// whatever metrics returns. It stands in for a node where a test is about the
// CLI, not the cluster.
type fakeNode struct {
	addr string

	mu      sync.Mutex
	topics  map[string][][]byte
	metrics func() status.Metrics // METRICS document; nil = a single-node leader
	noTopic bool                  // answer TOPICS as an unknown command
	log     fakeLog               // the log commands' state (fakelog_test.go)
}

func startFake(t *testing.T) *fakeNode {
	t.Helper()
	return startFakeAt(t, "127.0.0.1:0")
}

func startFakeAt(t *testing.T, addr string) *fakeNode {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{addr: ln.Addr().String(), topics: map[string][][]byte{}, log: newFakeLog()}
	srv := server.New(server.Config{}, server.HandlerFunc(f.handle), nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("fake server: %v", err)
		}
	})
	return f
}

func singleLeaderMetrics() status.Metrics {
	return status.Metrics{
		ID: 1, State: "Leader", CurrentTerm: 2, LastLogIndex: 7, LastApplied: 7,
		CurrentLeader: ptr(1), Vote: status.Vote{Term: 2, NodeID: 1, Committed: true},
		MembershipConfig: status.MembershipConfig{Nodes: []uint64{1}, Voters: []uint64{1}, Learners: []uint64{}},
	}
}

func ptr(v uint64) *uint64 { return &v }

func (f *fakeNode) handle(_ context.Context, reqs []protocol.Request) []protocol.Reply {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]protocol.Reply, len(reqs))
	for i, r := range reqs {
		out[i] = f.one(r)
	}
	return out
}

func (f *fakeNode) one(r protocol.Request) protocol.Reply {
	switch r.Command {
	case protocol.CmdRegister:
		if _, ok := f.topics[r.Topic]; !ok {
			f.topics[r.Topic] = nil
		}
		return protocol.OK()
	case protocol.CmdPut:
		if strings.HasPrefix(r.Topic, "readonly") {
			return protocol.Errf("NotLeaderError: segment 1 of readonly is led by node 2")
		}
		f.topics[r.Topic] = append(f.topics[r.Topic], append([]byte(nil), r.Payload...))
		f.log.append(r.Topic, string(r.Payload))
		return protocol.OK()
	case protocol.CmdGet:
		q, ok := f.topics[r.Topic]
		if !ok {
			return protocol.Errf("unknown topic %s", r.Topic)
		}
		if len(q) == 0 {
			return protocol.Empty()
		}
		f.topics[r.Topic] = q[1:]
		return protocol.Payload(q[0])
	case protocol.CmdState:
		if _, ok := f.topics[r.Topic]; !ok {
			return protocol.Errf("unknown topic %s", r.Topic)
		}
		return protocol.Raw(fmt.Appendf(nil, `{"topic":%q,"current_segment":1,"leader_node":1,"sealed_segments":{},"segment_leaders":{"1":1}}`, r.Topic))
	case protocol.CmdMetrics:
		m := f.metrics
		if m == nil {
			m = singleLeaderMetrics
		}
		b, err := json.Marshal(m())
		if err != nil {
			return protocol.Errf("marshal: %v", err)
		}
		return protocol.Raw(b)
	case "TOPICS":
		if f.noTopic {
			return protocol.UnknownCommand(r.Command)
		}
		names := make([]string, 0, len(f.topics))
		for n := range f.topics {
			names = append(names, n)
		}
		sort.Strings(names)
		objs := make([]status.TopicSummary, 0, len(names))
		for _, n := range names {
			objs = append(objs, status.TopicSummary{Topic: n, CurrentSegment: 1, LeaderNode: 1, Entries: uint64(len(f.topics[n]))})
		}
		b, err := json.Marshal(objs)
		if err != nil {
			return protocol.Errf("marshal: %v", err)
		}
		return protocol.Raw(b)
	}
	if rep, ok := f.logCommand(r); ok {
		return rep
	}
	return protocol.UnknownCommand(r.Command)
}

func (f *fakeNode) put(topic, payload string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.topics[topic] = append(f.topics[topic], []byte(payload))
	f.log.append(topic, payload)
}

func (f *fakeNode) count(topic string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.topics[topic])
}

func (f *fakeNode) setMetrics(m func() status.Metrics) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.metrics = m
}

// silentListener accepts connections and never answers: requests to it time out.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// closedAddr is an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
