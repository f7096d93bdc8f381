package kauthz

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/kafka/kgroup"
)

// Consumer-group APIs, as the Walrus group commands: membership and
// commits need read on the group (READ/ACK/COMMIT), committed offsets
// describe (COMMITTED); deleting offsets or groups needs delete on the
// group (no Walrus command has it).

const coordinatorGroup = 0 // FindCoordinator key type of a group

func (g Guard) findCoordinator(h Handler) Handler {
	return func(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
		req := kreq.(*kmsg.FindCoordinatorRequest)
		if req.CoordinatorType != coordinatorGroup {
			return h(ctx, req)
		}
		ok := func(key string) bool { return g.group(ctx, acl.Describe, key) }
		if req.Version < 4 {
			if ok(req.CoordinatorKey) {
				return h(ctx, req)
			}
			resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
			resp.ErrorCode, resp.NodeID = groupDenied, -1
			return resp, nil
		}
		yes, no := split(req.CoordinatorKeys, ok)
		if len(no) == 0 {
			return h(ctx, req)
		}
		r := *req
		r.CoordinatorKeys = yes
		resp, err := serve(ctx, h, &r, len(yes) > 0)
		if err != nil {
			return nil, err
		}
		fr := resp.(*kmsg.FindCoordinatorResponse)
		for _, k := range no {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key, c.ErrorCode, c.NodeID = k, groupDenied, -1
			fr.Coordinators = append(fr.Coordinators, c)
		}
		return fr, nil
	}
}

// memberOp guards JoinGroup, SyncGroup, Heartbeat and LeaveGroup: read on
// the group.
func (g Guard) memberOp(h Handler) Handler {
	return func(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
		var group string
		switch r := req.(type) {
		case *kmsg.JoinGroupRequest:
			group = r.Group
		case *kmsg.SyncGroupRequest:
			group = r.Group
		case *kmsg.HeartbeatRequest:
			group = r.Group
		case *kmsg.LeaveGroupRequest:
			group = r.Group
		}
		if g.group(ctx, acl.Read, group) {
			return h(ctx, req)
		}
		resp := req.ResponseKind()
		switch r := resp.(type) {
		case *kmsg.JoinGroupResponse:
			r.ErrorCode = groupDenied
		case *kmsg.SyncGroupResponse:
			r.ErrorCode = groupDenied
		case *kmsg.HeartbeatResponse:
			r.ErrorCode = groupDenied
		case *kmsg.LeaveGroupResponse:
			r.ErrorCode = groupDenied
		}
		return resp, nil
	}
}

// offsetCommit needs read on the group and on each topic (as COMMIT).
func (g Guard) offsetCommit(h Handler) Handler {
	return func(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
		req := kreq.(*kmsg.OffsetCommitRequest)
		groupOK := g.group(ctx, acl.Read, req.Group)
		code := topicDenied
		if !groupOK {
			code = groupDenied
		}
		return partial(ctx, h, req, func(r *kmsg.OffsetCommitRequest) *[]kmsg.OffsetCommitRequestTopic { return &r.Topics },
			func(t kmsg.OffsetCommitRequestTopic) bool { return groupOK && g.topic(ctx, acl.Read, t.Topic) },
			func(cr *kmsg.OffsetCommitResponse, no []kmsg.OffsetCommitRequestTopic) {
				cr.Topics = append(cr.Topics, kgroup.CommitErrors(no, code)...)
			})
	}
}

// offsetFetch needs describe on the group and on each topic (as
// COMMITTED); a fetch of every topic leaves out those it may not
// describe.
func (g Guard) offsetFetch(h Handler) Handler {
	return func(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
		req := kreq.(*kmsg.OffsetFetchRequest)
		describe := func(t string) bool { return g.topic(ctx, acl.Describe, t) }
		if req.Version >= 8 {
			return g.offsetFetchGroups(ctx, h, req, describe)
		}
		if !g.group(ctx, acl.Describe, req.Group) {
			resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
			resp.ErrorCode = groupDenied
			for _, t := range req.Topics { // v0-1 have per-partition codes only
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseTopicPartition()
					rp.Partition, rp.Offset, rp.ErrorCode = p, -1, groupDenied
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp, nil
		}
		r := *req
		var no []kmsg.OffsetFetchRequestTopic
		if req.Topics != nil {
			r.Topics, no = split(req.Topics, func(t kmsg.OffsetFetchRequestTopic) bool { return describe(t.Topic) })
		}
		resp, err := h(ctx, &r)
		if err != nil {
			return nil, err
		}
		fr := resp.(*kmsg.OffsetFetchResponse)
		if req.Topics == nil {
			fr.Topics, _ = split(fr.Topics, func(t kmsg.OffsetFetchResponseTopic) bool { return describe(t.Topic) })
		}
		for _, t := range no {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.ErrorCode = p, -1, topicDenied
				rt.Partitions = append(rt.Partitions, rp)
			}
			fr.Topics = append(fr.Topics, rt)
		}
		return fr, nil
	}
}

// offsetFetchGroups is OffsetFetch v8+, several groups at once.
func (g Guard) offsetFetchGroups(ctx context.Context, h Handler, req *kmsg.OffsetFetchRequest, describe func(string) bool) (kmsg.Response, error) {
	groups, deniedGroups := split(req.Groups, func(x kmsg.OffsetFetchRequestGroup) bool { return g.group(ctx, acl.Describe, x.Group) })
	deniedTopics := map[string][]kmsg.OffsetFetchRequestGroupTopic{}
	for i := range groups {
		if groups[i].Topics != nil {
			var no []kmsg.OffsetFetchRequestGroupTopic
			groups[i].Topics, no = split(groups[i].Topics, func(t kmsg.OffsetFetchRequestGroupTopic) bool { return describe(t.Topic) })
			deniedTopics[groups[i].Group] = no
		}
	}
	r := *req
	r.Groups = groups
	resp, err := serve(ctx, h, &r, len(groups) > 0)
	if err != nil {
		return nil, err
	}
	fr := resp.(*kmsg.OffsetFetchResponse)
	for i := range fr.Groups {
		rg := &fr.Groups[i]
		no, named := deniedTopics[rg.Group]
		if !named {
			rg.Topics, _ = split(rg.Topics, func(t kmsg.OffsetFetchResponseGroupTopic) bool { return describe(t.Topic) })
		}
		for _, t := range no {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.Offset, rp.ErrorCode = p, -1, topicDenied
				rt.Partitions = append(rt.Partitions, rp)
			}
			rg.Topics = append(rg.Topics, rt)
		}
	}
	for _, x := range deniedGroups {
		rg := kmsg.NewOffsetFetchResponseGroup()
		rg.Group, rg.ErrorCode = x.Group, groupDenied
		fr.Groups = append(fr.Groups, rg)
	}
	return fr, nil
}

// offsetDelete needs delete on the group and read on each topic.
func (g Guard) offsetDelete(h Handler) Handler {
	return func(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
		req := kreq.(*kmsg.OffsetDeleteRequest)
		if !g.group(ctx, acl.Delete, req.Group) {
			resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
			resp.ErrorCode = groupDenied
			return resp, nil
		}
		return partial(ctx, h, req, func(r *kmsg.OffsetDeleteRequest) *[]kmsg.OffsetDeleteRequestTopic { return &r.Topics },
			func(t kmsg.OffsetDeleteRequestTopic) bool { return g.topic(ctx, acl.Read, t.Topic) },
			func(dr *kmsg.OffsetDeleteResponse, no []kmsg.OffsetDeleteRequestTopic) {
				for _, t := range no {
					rt := kmsg.NewOffsetDeleteResponseTopic()
					rt.Topic = t.Topic
					for _, p := range t.Partitions {
						rp := kmsg.NewOffsetDeleteResponseTopicPartition()
						rp.Partition, rp.ErrorCode = p.Partition, topicDenied
						rt.Partitions = append(rt.Partitions, rp)
					}
					dr.Topics = append(dr.Topics, rt)
				}
			})
	}
}

// listGroups lists every group with describe on the cluster (as
// GROUPS), otherwise the groups the principal may describe.
func (g Guard) listGroups(h Handler) Handler {
	return func(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
		resp, err := h(ctx, req)
		if err != nil || g.Allowed(ctx, acl.Describe, acl.ClusterRes()) {
			return resp, err
		}
		lr := resp.(*kmsg.ListGroupsResponse)
		lr.Groups, _ = split(lr.Groups, func(x kmsg.ListGroupsResponseGroup) bool { return g.group(ctx, acl.Describe, x.Group) })
		return lr, nil
	}
}

// describeGroups needs describe on each group.
func (g Guard) describeGroups(h Handler) Handler {
	return func(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
		return partial(ctx, h, kreq.(*kmsg.DescribeGroupsRequest), func(r *kmsg.DescribeGroupsRequest) *[]string { return &r.Groups },
			func(x string) bool { return g.group(ctx, acl.Describe, x) },
			func(dr *kmsg.DescribeGroupsResponse, no []string) {
				for _, x := range no {
					rg := kmsg.NewDescribeGroupsResponseGroup()
					rg.Group, rg.ErrorCode = x, groupDenied
					dr.Groups = append(dr.Groups, rg)
				}
			})
	}
}

// deleteGroups needs delete on each group.
func (g Guard) deleteGroups(h Handler) Handler {
	return func(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
		return partial(ctx, h, kreq.(*kmsg.DeleteGroupsRequest), func(r *kmsg.DeleteGroupsRequest) *[]string { return &r.Groups },
			func(x string) bool { return g.group(ctx, acl.Delete, x) },
			func(dr *kmsg.DeleteGroupsResponse, no []string) {
				for _, x := range no {
					rg := kmsg.NewDeleteGroupsResponseGroup()
					rg.Group, rg.ErrorCode = x, groupDenied
					dr.Groups = append(dr.Groups, rg)
				}
			})
	}
}
