// Package kcoord serves Kafka's consumer-group APIs (node/kafka.Groups).
// The group coordinator of every group is the Raft leader, where
// node/group keeps the committed offsets: there kcoord runs kgroup's
// membership state machine over those offsets, so a Kafka group is the
// same group as COMMIT/GROUPS; every other node answers NOT_COORDINATOR
// and FindCoordinator points clients at the leader. A new Raft term
// starts the membership afresh (members rejoin; offsets are in Raft).
package kcoord

import (
	"context"
	"net"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/kafka"
	"github.com/walrus-go/walrus/node/kafka/kgroup"
	"github.com/walrus-go/walrus/node/metadata"
)

// Leadership says whether this node coordinates the groups now
// (consensus.Consensus).
type Leadership interface {
	IsLeader() bool
	// Term is the current Raft term.
	Term() uint64
	// Leader is the Raft leader's node id (0: none known) and address.
	Leader() (uint64, string)
}

// Nodes finds a node's Kafka address (metadata.FSM).
type Nodes interface {
	Node(id uint64) (metadata.Node, bool)
}

// Liveness judges whether a node is up.
type Liveness interface {
	Alive(id uint64) bool
}

// Deps are the parts the coordinator uses.
type Deps struct {
	Self    uint64
	Lead    Leadership
	Nodes   Nodes
	Live    Liveness
	Offsets kgroup.Offsets
	Config  kgroup.Config
}

// Server implements kafka.Groups.
type Server struct {
	d Deps

	mu     sync.Mutex
	term   uint64
	coord  *kgroup.Coordinator // nil while not leading
	closed bool
}

var _ kafka.Groups = (*Server)(nil)

// New builds the group APIs' server; Close stops its timers.
func New(d Deps) *Server { return &Server{d: d} }

// Close ends the current membership state: waiting joins answer
// COORDINATOR_NOT_AVAILABLE.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.coord != nil {
		s.coord.Close()
		s.coord = nil
	}
}

// current returns the coordinator of this term, or nil when this node
// does not coordinate.
func (s *Server) current() *kgroup.Coordinator {
	// The term is read first: a leadership lost in between is caught by
	// the next call, and a new term always starts fresh.
	term := s.d.Lead.Term()
	ok := s.d.Lead.IsLeader()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.coord != nil && (!ok || s.term != term || s.closed) {
		s.coord.Close()
		s.coord = nil
	}
	if !ok || s.closed {
		return nil
	}
	if s.coord == nil {
		s.coord, s.term = kgroup.New(s.d.Config, s.d.Offsets), term
	}
	return s.coord
}

const notCoordinator = 16 // kerr.NotCoordinator

// FindCoordinator answers the Raft leader's Kafka address for groups;
// transactions are not served.
func (s *Server) FindCoordinator(_ context.Context, req *kmsg.FindCoordinatorRequest) (*kmsg.FindCoordinatorResponse, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	id, host, port, code := s.locate(req.CoordinatorType)
	if req.Version >= 4 {
		for _, k := range req.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key, c.NodeID, c.Host, c.Port, c.ErrorCode = k, id, host, port, code
			resp.Coordinators = append(resp.Coordinators, c)
		}
		return resp, nil
	}
	resp.NodeID, resp.Host, resp.Port, resp.ErrorCode = id, host, port, code
	return resp, nil
}

func (s *Server) locate(keyType int8) (id int32, host string, port int32, code int16) {
	if keyType != 0 {
		return -1, "", -1, kerr.UnsupportedVersion.Code
	}
	leader, _ := s.d.Lead.Leader()
	n, ok := s.d.Nodes.Node(leader)
	if leader == 0 || !ok || n.KafkaAddr == "" || (leader != s.d.Self && !s.d.Live.Alive(leader)) {
		return -1, "", -1, kerr.CoordinatorNotAvailable.Code
	}
	h, p, err := net.SplitHostPort(n.KafkaAddr)
	pn, perr := strconv.Atoi(p)
	if err != nil || perr != nil {
		return -1, "", -1, kerr.CoordinatorNotAvailable.Code
	}
	return int32(leader), h, int32(pn), 0
}

// validGroup is the rule group names share with COMMIT (they are stored
// next to topic names).
func validGroup(g string) bool { return engine.ValidateTopic(g) == nil }

// JoinGroup handles JoinGroup on the coordinator.
func (s *Server) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) (*kmsg.JoinGroupResponse, error) {
	c := s.current()
	if c == nil || !validGroup(req.Group) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation = notCoordinator, -1
		if c != nil {
			resp.ErrorCode = kerr.InvalidGroupID.Code
		}
		return resp, nil
	}
	id, host := kafka.Client(ctx)
	return c.JoinGroup(ctx, req, id, host), nil
}

// SyncGroup handles SyncGroup on the coordinator.
func (s *Server) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) (*kmsg.SyncGroupResponse, error) {
	c := s.current()
	if c == nil {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = notCoordinator
		return resp, nil
	}
	return c.SyncGroup(ctx, req), nil
}

// Heartbeat handles Heartbeat on the coordinator.
func (s *Server) Heartbeat(_ context.Context, req *kmsg.HeartbeatRequest) (*kmsg.HeartbeatResponse, error) {
	c := s.current()
	if c == nil {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = notCoordinator
		return resp, nil
	}
	return c.Heartbeat(req), nil
}

// LeaveGroup handles LeaveGroup on the coordinator.
func (s *Server) LeaveGroup(_ context.Context, req *kmsg.LeaveGroupRequest) (*kmsg.LeaveGroupResponse, error) {
	c := s.current()
	if c == nil {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = notCoordinator
		return resp, nil
	}
	return c.LeaveGroup(req), nil
}

// OffsetCommit handles OffsetCommit on the coordinator.
func (s *Server) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) (*kmsg.OffsetCommitResponse, error) {
	c := s.current()
	if c == nil || !validGroup(req.Group) {
		code := int16(notCoordinator)
		if c != nil {
			code = kerr.InvalidGroupID.Code
		}
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.Topics = kgroup.CommitErrors(req.Topics, code)
		return resp, nil
	}
	return c.OffsetCommit(ctx, req), nil
}

// OffsetFetch handles OffsetFetch on the coordinator.
func (s *Server) OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) (*kmsg.OffsetFetchResponse, error) {
	c := s.current()
	if c == nil {
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = notCoordinator
		for _, g := range req.Groups {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, notCoordinator
			resp.Groups = append(resp.Groups, rg)
		}
		return resp, nil
	}
	return c.OffsetFetch(ctx, req), nil
}

// OffsetDelete handles OffsetDelete on the coordinator.
func (s *Server) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) (*kmsg.OffsetDeleteResponse, error) {
	c := s.current()
	if c == nil {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = notCoordinator
		return resp, nil
	}
	return c.OffsetDelete(ctx, req), nil
}

// ListGroups lists the groups on the coordinator; every other node
// coordinates none and answers an empty list (admin clients ask every
// broker and merge).
func (s *Server) ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) (*kmsg.ListGroupsResponse, error) {
	c := s.current()
	if c == nil {
		return req.ResponseKind().(*kmsg.ListGroupsResponse), nil
	}
	return c.ListGroups(ctx, req), nil
}

// DescribeGroups handles DescribeGroups on the coordinator.
func (s *Server) DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) (*kmsg.DescribeGroupsResponse, error) {
	c := s.current()
	if c == nil {
		resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, g := range req.Groups {
			d := kmsg.NewDescribeGroupsResponseGroup()
			d.Group, d.ErrorCode = g, notCoordinator
			resp.Groups = append(resp.Groups, d)
		}
		return resp, nil
	}
	return c.DescribeGroups(ctx, req), nil
}

// DeleteGroups handles DeleteGroups on the coordinator.
func (s *Server) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) (*kmsg.DeleteGroupsResponse, error) {
	c := s.current()
	if c == nil {
		resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for _, g := range req.Groups {
			d := kmsg.NewDeleteGroupsResponseGroup()
			d.Group, d.ErrorCode = g, notCoordinator
			resp.Groups = append(resp.Groups, d)
		}
		return resp, nil
	}
	return c.DeleteGroups(ctx, req), nil
}
