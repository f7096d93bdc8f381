package kgroup

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups handles ListGroups v0-v4 (states filter v4+). Groups that only
// have committed offsets are listed Empty.
func (c *Coordinator) ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := kmsg.NewPtrListGroupsResponse()
	resp.Version = req.Version
	type row struct{ name, ptype, state string }
	rows := map[string]row{}
	c.mu.Lock()
	for name, g := range c.groups {
		if len(g.members) > 0 {
			rows[name] = row{name, g.protocolType, g.state.String()}
		}
	}
	c.mu.Unlock()
	stored, err := c.offsets.Groups(ctx)
	if err != nil {
		resp.ErrorCode = errCoordinatorNotAvail
		return resp
	}
	for _, name := range stored {
		if _, ok := rows[name]; !ok {
			rows[name] = row{name, "consumer", stateEmpty.String()}
		}
	}
	names := make([]string, 0, len(rows))
	for n := range rows {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := rows[n]
		if req.Version >= 4 && len(req.StatesFilter) > 0 && !contains(req.StatesFilter, r.state) {
			continue
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState = r.name, r.ptype, r.state
		resp.Groups = append(resp.Groups, g)
	}
	return resp
}

// DescribeGroups handles DescribeGroups v0-v5. An unknown group is Dead.
func (c *Coordinator) DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := kmsg.NewPtrDescribeGroupsResponse()
	resp.Version = req.Version
	for _, name := range req.Groups {
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.Group = name
		if name == "" {
			d.ErrorCode = errInvalidGroupID
			resp.Groups = append(resp.Groups, d)
			continue
		}
		c.mu.Lock()
		g := c.groups[name]
		if g != nil && len(g.members) > 0 {
			d.State, d.ProtocolType = g.state.String(), g.protocolType
			if g.state == stateStable || g.state == stateCompleting {
				d.Protocol = g.protocol
			}
			ids := make([]string, 0, len(g.members))
			for id := range g.members {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			for _, id := range ids {
				m := g.members[id]
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, strPtr(m.instanceID), m.clientID, m.host
				if d.Protocol != "" {
					dm.ProtocolMetadata = metadataOf(m, d.Protocol)
				}
				if g.state == stateStable {
					dm.MemberAssignment = m.assignment
				}
				d.Members = append(d.Members, dm)
			}
		}
		c.mu.Unlock()
		if d.State == "" {
			d.State = stateDead.String()
			if has, err := c.hasOffsets(ctx, name); err != nil {
				d.ErrorCode = errCoordinatorNotAvail
			} else if has {
				d.State, d.ProtocolType = stateEmpty.String(), "consumer"
			}
		}
		resp.Groups = append(resp.Groups, d)
	}
	return resp
}

func (c *Coordinator) hasOffsets(ctx context.Context, group string) (bool, error) {
	gs, err := c.offsets.Groups(ctx)
	return contains(gs, group), err
}

// DeleteGroups handles DeleteGroups v0-v2: a group with members answers
// NON_EMPTY_GROUP; an unknown one GROUP_ID_NOT_FOUND.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := kmsg.NewPtrDeleteGroupsResponse()
	resp.Version = req.Version
	for _, name := range req.Groups {
		r := kmsg.NewDeleteGroupsResponseGroup()
		r.Group = name
		c.mu.Lock()
		g := c.groups[name]
		active := g != nil && len(g.members) > 0
		c.mu.Unlock()
		switch has, err := c.hasOffsets(ctx, name); {
		case name == "":
			r.ErrorCode = errInvalidGroupID
		case active:
			r.ErrorCode = errNonEmptyGroup
		case err != nil:
			r.ErrorCode = errCoordinatorNotAvail
		case !has:
			r.ErrorCode = errGroupIDNotFound
		default:
			if err := c.offsets.DeleteGroup(ctx, name); err != nil {
				r.ErrorCode = errCoordinatorNotAvail
			}
		}
		resp.Groups = append(resp.Groups, r)
	}
	return resp
}
