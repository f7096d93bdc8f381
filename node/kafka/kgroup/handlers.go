package kgroup

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup handles JoinGroup v0-v9. It blocks until the join phase ends,
// ctx ends or the coordinator closes.
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest, clientID, host string) *kmsg.JoinGroupResponse {
	fail := func(code int16, id string) *kmsg.JoinGroupResponse {
		r := kmsg.NewPtrJoinGroupResponse()
		r.Version, r.ErrorCode, r.Generation, r.MemberID = req.Version, code, -1, id
		return r
	}
	if req.Group == "" {
		return fail(errInvalidGroupID, req.MemberID)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < c.cfg.MinSession || session > c.cfg.MaxSession {
		return fail(errInvalidSessionTimeout, req.MemberID)
	}
	rebalance := session
	if req.Version >= 1 {
		rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return fail(errInconsistentProtocol, req.MemberID)
	}
	for _, p := range req.Protocols {
		if len(p.Metadata) > c.cfg.MaxMetadata {
			return fail(errInconsistentProtocol, req.MemberID)
		}
	}
	instance := ""
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fail(errCoordinatorNotAvail, req.MemberID)
	}
	g := c.groups[req.Group]
	if g == nil {
		if len(c.groups) >= c.cfg.MaxGroups {
			c.mu.Unlock()
			return fail(errCoordinatorNotAvail, req.MemberID)
		}
		g = &group{name: req.Group, members: map[string]*member{}, pending: map[string]Timer{}}
		c.groups[req.Group] = g
	}
	if len(g.members) > 0 && (g.protocolType != req.ProtocolType || !sharesProtocol(g, req.Protocols)) {
		c.mu.Unlock()
		return fail(errInconsistentProtocol, req.MemberID)
	}
	id := req.MemberID
	if id == "" && instance != "" {
		for _, m := range g.members { // static member rejoining: takes its old place
			if m.instanceID == instance {
				id = m.id
			}
		}
	}
	m := g.members[id]
	if id == "" {
		id = newMemberID(clientID)
		if req.Version >= 4 && instance == "" {
			// The client must rejoin with this id (KIP-394); it expires
			// after a session timeout if it never does.
			g.pending[id] = c.cfg.Clock.AfterFunc(session, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				delete(g.pending, id)
				c.prune(g)
			})
			c.mu.Unlock()
			return fail(errMemberIDRequired, id)
		}
	} else if m == nil {
		t, ok := g.pending[id]
		if !ok {
			c.mu.Unlock()
			return fail(errUnknownMemberID, id)
		}
		t.Stop()
		delete(g.pending, id)
	}
	if m == nil {
		if len(g.members) >= c.cfg.MaxMembers {
			c.mu.Unlock()
			return fail(errGroupMaxSize, id)
		}
		m = &member{id: id}
		g.members[id] = m
	}
	if m.joinCh != nil { // a duplicate join: the old call gets replaced
		m.joinCh <- &kmsg.JoinGroupResponse{ErrorCode: errRebalanceInProgress, Generation: -1, MemberID: id}
	}
	m.instanceID, m.clientID, m.host = instance, clientID, host
	m.protocolType, m.protocols = req.ProtocolType, req.Protocols
	m.session, m.rebalance = session, rebalance
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	g.protocolType = req.ProtocolType
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	m.joinCh = ch
	c.prepareRebalance(g)
	c.maybeCompleteJoin(g)
	c.mu.Unlock()

	select {
	case r := <-ch:
		r.Version = req.Version
		return r
	case <-ctx.Done():
		return fail(errRebalanceInProgress, id)
	case <-c.done:
		return fail(errCoordinatorNotAvail, id)
	}
}

func sharesProtocol(g *group, ps []kmsg.JoinGroupRequestProtocol) bool {
	for _, m := range g.members {
		for _, p := range ps {
			if metadataOf(m, p.Name) != nil || hasProtocol(m, p.Name) {
				return true
			}
		}
		return false // candidates must be supported by all: one member is a quick check
	}
	return true
}

func hasProtocol(m *member, name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

// SyncGroup handles SyncGroup v0-v5: the leader hands out assignments,
// followers wait for them.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = req.Version
	fail := func(code int16) *kmsg.SyncGroupResponse { resp.ErrorCode = code; return resp }
	if req.Group == "" {
		return fail(errInvalidGroupID)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fail(errCoordinatorNotAvail)
	}
	g := c.groups[req.Group]
	var m *member
	if g != nil {
		m = g.members[req.MemberID]
	}
	switch {
	case m == nil:
		c.mu.Unlock()
		return fail(errUnknownMemberID)
	case req.Generation != g.generation:
		c.mu.Unlock()
		return fail(errIllegalGeneration)
	case (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol):
		c.mu.Unlock()
		return fail(errInconsistentProtocol)
	case g.state == statePreparing:
		c.mu.Unlock()
		return fail(errRebalanceInProgress)
	}
	resp.ProtocolType, resp.Protocol = kmsg.StringPtr(g.protocolType), kmsg.StringPtr(g.protocol)
	if g.state == stateStable {
		resp.MemberAssignment = m.assignment
		c.mu.Unlock()
		return resp
	}
	c.resetSession(g, m)
	if m.id == g.leader {
		for _, a := range req.GroupAssignment {
			if len(a.MemberAssignment) > c.cfg.MaxMetadata {
				c.mu.Unlock()
				return fail(errInconsistentProtocol)
			}
		}
		for _, a := range req.GroupAssignment {
			if o := g.members[a.MemberID]; o != nil {
				o.assignment = a.MemberAssignment
			}
		}
		g.state = stateStable
		for _, o := range g.members {
			if o.syncCh != nil {
				o.syncCh <- &kmsg.SyncGroupResponse{ProtocolType: resp.ProtocolType, Protocol: resp.Protocol, MemberAssignment: o.assignment}
				o.syncCh = nil
			}
		}
		resp.MemberAssignment = m.assignment
		c.mu.Unlock()
		return resp
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	if m.syncCh != nil {
		m.syncCh <- &kmsg.SyncGroupResponse{ErrorCode: errRebalanceInProgress}
	}
	m.syncCh = ch
	c.mu.Unlock()
	select {
	case r := <-ch:
		r.Version = req.Version
		return r
	case <-ctx.Done():
		return fail(errRebalanceInProgress)
	case <-c.done:
		return fail(errCoordinatorNotAvail)
	}
}

// Heartbeat handles Heartbeat v0-v4.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.Version = req.Version
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[req.Group]
	var m *member
	if g != nil {
		m = g.members[req.MemberID]
	}
	switch {
	case req.Group == "":
		resp.ErrorCode = errInvalidGroupID
	case c.closed:
		resp.ErrorCode = errCoordinatorNotAvail
	case m == nil:
		resp.ErrorCode = errUnknownMemberID
	case req.Generation != g.generation && g.state != statePreparing:
		resp.ErrorCode = errIllegalGeneration
	case g.state == statePreparing:
		resp.ErrorCode = errRebalanceInProgress
	default:
		c.resetSession(g, m)
	}
	return resp
}

// LeaveGroup handles LeaveGroup v0-v5 (a batch of members v3+).
func (c *Coordinator) LeaveGroup(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.Version = req.Version
	if req.Group == "" {
		resp.ErrorCode = errInvalidGroupID
		return resp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		resp.ErrorCode = errCoordinatorNotAvail
		return resp
	}
	g := c.groups[req.Group]
	leave := func(id, instance string) int16 {
		if g == nil {
			return errUnknownMemberID
		}
		m := g.members[id]
		if m == nil && instance != "" {
			for _, o := range g.members {
				if o.instanceID == instance {
					m = o
				}
			}
		}
		if m == nil {
			return errUnknownMemberID
		}
		c.removeMember(g, m)
		return errNone
	}
	if req.Version < 3 {
		resp.ErrorCode = leave(req.MemberID, "")
		return resp
	}
	for _, lm := range req.Members {
		instance := ""
		if lm.InstanceID != nil {
			instance = *lm.InstanceID
		}
		r := kmsg.NewLeaveGroupResponseMember()
		r.MemberID, r.InstanceID, r.ErrorCode = lm.MemberID, lm.InstanceID, leave(lm.MemberID, instance)
		resp.Members = append(resp.Members, r)
	}
	return resp
}
