package kcoord

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/status"
	"github.com/walrus-go/walrus/node/wire"
)

type fakeLead struct {
	mu     sync.Mutex
	leader uint64
	term   uint64
	self   uint64
}

func (l *fakeLead) IsLeader() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leader == l.self
}

func (l *fakeLead) Term() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.term
}

func (l *fakeLead) Leader() (uint64, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leader, ""
}

func (l *fakeLead) set(leader, term uint64) {
	l.mu.Lock()
	l.leader, l.term = leader, term
	l.mu.Unlock()
}

type fakeNodes map[uint64]metadata.Node

func (n fakeNodes) Node(id uint64) (metadata.Node, bool) { v, ok := n[id]; return v, ok }

type alive map[uint64]bool

func (a alive) Alive(id uint64) bool { return a[id] }

// store is node/group in memory: committed offsets per (group, log).
type store struct {
	mu  sync.Mutex
	off map[[2]string]uint64
}

func (s *store) Group(_ context.Context, req *wire.GroupRequest) (*wire.GroupReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{req.Group, req.Topic}
	switch req.Op {
	case wire.GroupCommit:
		if req.Topic == "gone" {
			return nil, fmt.Errorf("%w %s", wire.ErrUnknownTopic, req.Topic)
		}
		if req.Offsets[0] > 100 {
			return &wire.GroupReply{Kind: byte(protocol.ReplyErr), Body: []byte("offset out of range")}, nil
		}
		s.off[k] = req.Offsets[0]
	case wire.GroupDelete:
		delete(s.off, k)
	case wire.GroupCommitted:
		doc := status.Committed{Group: req.Group, Topic: req.Topic, Offset: -1}
		if o, ok := s.off[k]; ok {
			doc.Offset = int64(o)
		}
		b, _ := json.Marshal(doc)
		return &wire.GroupReply{Kind: byte(protocol.ReplyRaw), Body: b}, nil
	}
	return &wire.GroupReply{Kind: byte(protocol.ReplyOK)}, nil
}

func (s *store) Groups(string) []metadata.GroupCommit {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []metadata.GroupCommit
	for k, o := range s.off {
		out = append(out, metadata.GroupCommit{Group: k[0], Topic: k[1], Offset: o})
	}
	return out
}

func newServer(t *testing.T, self uint64) (*Server, *fakeLead, *store) {
	lead := &fakeLead{self: self, leader: 1, term: 1}
	st := &store{off: map[[2]string]uint64{}}
	s := New(Deps{
		Self: self, Lead: lead, Live: alive{1: true, 2: true},
		Nodes:   fakeNodes{1: {ID: 1, KafkaAddr: "127.0.0.1:9192"}, 2: {ID: 2, KafkaAddr: "127.0.0.1:9193"}, 3: {ID: 3}},
		Offsets: Offsets{Store: st, Commits: st},
	})
	t.Cleanup(s.Close)
	return s, lead, st
}

func TestFindCoordinator(t *testing.T) {
	s, lead, _ := newServer(t, 2)
	for _, v := range []int16{0, 3, 4} {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version, req.CoordinatorKey, req.CoordinatorKeys = v, "g", []string{"g", "h"}
		resp, _ := s.FindCoordinator(context.Background(), req)
		if v < 4 && (resp.ErrorCode != 0 || resp.NodeID != 1 || resp.Host != "127.0.0.1" || resp.Port != 9192) {
			t.Fatalf("v%d: %+v", v, resp)
		}
		if v == 4 && (len(resp.Coordinators) != 2 || resp.Coordinators[1].Key != "h" || resp.Coordinators[1].NodeID != 1 || resp.Coordinators[1].Port != 9192) {
			t.Fatalf("v4: %+v", resp.Coordinators)
		}
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version, req.CoordinatorType = 3, 1
	if resp, _ := s.FindCoordinator(context.Background(), req); resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("transaction coordinator: %+v", resp)
	}
	for _, leader := range []uint64{0, 3, 4} { // none, no Kafka listener, unknown
		lead.set(leader, 2)
		req.CoordinatorType = 0
		if resp, _ := s.FindCoordinator(context.Background(), req); resp.ErrorCode != kerr.CoordinatorNotAvailable.Code {
			t.Fatalf("leader %d: %+v", leader, resp)
		}
	}
}

// A node that does not lead answers NOT_COORDINATOR, so clients find the
// coordinator again; ListGroups is empty there.
func TestNotCoordinator(t *testing.T) {
	s, _, _ := newServer(t, 2)
	ctx := context.Background()
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.SessionTimeoutMillis, join.ProtocolType = "g", 10000, "consumer"
	if r, _ := s.JoinGroup(ctx, join); r.ErrorCode != notCoordinator {
		t.Fatalf("join: %+v", r)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	if r, _ := s.Heartbeat(ctx, hb); r.ErrorCode != notCoordinator {
		t.Fatalf("heartbeat: %+v", r)
	}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group = "g"
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic, ct.Partitions = "t", []kmsg.OffsetCommitRequestTopicPartition{{Partition: 2, Offset: 5}}
	commit.Topics = append(commit.Topics, ct)
	if r, _ := s.OffsetCommit(ctx, commit); r.Topics[0].Partitions[0].ErrorCode != notCoordinator {
		t.Fatalf("commit: %+v", r)
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version, fetch.Groups = 8, []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
	if r, _ := s.OffsetFetch(ctx, fetch); r.Groups[0].ErrorCode != notCoordinator {
		t.Fatalf("fetch: %+v", r)
	}
	if r, _ := s.ListGroups(ctx, kmsg.NewPtrListGroupsRequest()); r.ErrorCode != 0 || len(r.Groups) != 0 {
		t.Fatalf("list: %+v", r)
	}
	desc := kmsg.NewPtrDescribeGroupsRequest()
	desc.Groups = []string{"g"}
	if r, _ := s.DescribeGroups(ctx, desc); r.Groups[0].ErrorCode != notCoordinator {
		t.Fatalf("describe: %+v", r)
	}
}

// On the leader commits reach the store under the partition's log name,
// and a new term starts the membership afresh while offsets stay.
func TestCoordinatorOffsetsAndTerms(t *testing.T) {
	s, lead, st := newServer(t, 1)
	ctx := context.Background()
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version, commit.Group, commit.Generation = 7, "g", -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic, ct.Partitions = "t", []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}, {Partition: 2, Offset: 7}}
	commit.Topics = append(commit.Topics, ct)
	if r, _ := s.OffsetCommit(ctx, commit); r.Topics[0].Partitions[0].ErrorCode != 0 || r.Topics[0].Partitions[1].ErrorCode != 0 {
		t.Fatalf("commit: %+v", r)
	}
	if st.off[[2]string{"g", "t"}] != 5 || st.off[[2]string{"g", "t#2"}] != 7 {
		t.Fatalf("store: %v", st.off)
	}
	bad := *commit
	bad.Group = "has space"
	if r, _ := s.OffsetCommit(ctx, &bad); r.Topics[0].Partitions[0].ErrorCode != kerr.InvalidGroupID.Code {
		t.Fatalf("invalid group: %+v", r)
	}
	refused := *commit
	refused.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 1, Offset: 1000}}}}
	if r, _ := s.OffsetCommit(ctx, &refused); r.Topics[0].Partitions[0].ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("a commit the store refused: %+v", r)
	}
	unknown := *commit
	unknown.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "gone", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}, ct}
	if r, _ := s.OffsetCommit(ctx, &unknown); r.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || r.Topics[1].Partitions[0].ErrorCode != 0 {
		t.Fatalf("a commit to an unknown topic next to a good one: %+v", r)
	}

	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version, fetch.Group = 7, "g"
	fetch.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1, 2}}}
	r, _ := s.OffsetFetch(ctx, fetch)
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 3 || r.Topics[0].Partitions[0].Offset != 5 || r.Topics[0].Partitions[1].Offset != -1 || r.Topics[0].Partitions[2].Offset != 7 {
		t.Fatalf("fetch: %+v", r)
	}
	fetch.Topics = nil // every committed offset
	if r, _ := s.OffsetFetch(ctx, fetch); len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 2 || r.Topics[0].Partitions[1].Partition != 2 {
		t.Fatalf("fetch all: %+v", r)
	}

	join := kmsg.NewPtrJoinGroupRequest()
	join.Version, join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis, join.ProtocolType = 3, "g", 10000, 10000, "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	jr, _ := s.JoinGroup(ctx, join)
	if jr.ErrorCode != 0 || jr.MemberID == "" {
		t.Fatalf("join: %+v", jr)
	}
	c1 := s.current()
	lead.set(1, 2) // re-elected in a new term
	if c2 := s.current(); c2 == c1 {
		t.Fatal("a new term kept the old membership")
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", jr.MemberID, jr.Generation
	if r, _ := s.Heartbeat(ctx, hb); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of a member of the old term: %+v", r)
	}
	if r, _ := s.OffsetFetch(ctx, fetch); len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 2 {
		t.Fatalf("offsets lost with the term: %+v", r)
	}

	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"g"}
	if r, _ := s.DeleteGroups(ctx, del); r.Groups[0].ErrorCode != 0 || len(st.off) != 0 {
		t.Fatalf("delete: %+v, store %v", r, st.off)
	}
}
