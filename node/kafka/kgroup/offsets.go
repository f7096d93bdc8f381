package kgroup

import (
	"context"
	"errors"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit handles OffsetCommit v0-v9. Group-managed commits must carry
// the current generation and a member id; simple commits (generation -1)
// are accepted only while the group has no members.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := kmsg.NewPtrOffsetCommitResponse()
	resp.Version = req.Version
	code := errNone
	c.mu.Lock()
	g := c.groups[req.Group]
	switch {
	case req.Group == "":
		code = errInvalidGroupID
	case c.closed:
		code = errCoordinatorNotAvail
	case g == nil || len(g.members) == 0:
		if req.Generation >= 0 || req.MemberID != "" {
			code = errUnknownMemberID
			if req.Generation < 0 {
				code = errNone
			}
		}
	default:
		m := g.members[req.MemberID]
		switch {
		case m == nil:
			code = errUnknownMemberID
		case req.Generation != g.generation:
			code = errIllegalGeneration
		case g.state == stateCompleting:
			// While the group prepares a rebalance, members of the current
			// generation may still commit (Kafka allows it, so consumers can
			// commit what they processed before giving partitions up).
			code = errRebalanceInProgress
		default:
			c.resetSession(g, m)
		}
	}
	c.mu.Unlock()
	if code != errNone {
		resp.Topics = CommitErrors(req.Topics, code)
		return resp
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			md := ""
			if p.Metadata != nil {
				md = *p.Metadata
			}
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = c.commitOne(ctx, req.Group, Commit{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset, Metadata: md})
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// CommitErrors answers every partition of an OffsetCommit's topics with
// code (a commit refused as a whole: not the coordinator, not allowed).
func CommitErrors(topics []kmsg.OffsetCommitRequestTopic, code int16) []kmsg.OffsetCommitResponseTopic {
	out := make([]kmsg.OffsetCommitResponseTopic, 0, len(topics))
	for _, t := range topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		out = append(out, rt)
	}
	return out
}

// commitOne stores one partition's offset and answers its error code.
func (c *Coordinator) commitOne(ctx context.Context, group string, cm Commit) int16 {
	err := c.offsets.Commit(ctx, group, []Commit{cm})
	switch {
	case err == nil:
		return errNone
	case errors.Is(err, ErrUnknownPartition):
		return errUnknownTopicOrPartition
	case errors.Is(err, ErrInvalidOffset):
		return errOffsetOutOfRange
	}
	c.cfg.Logger.Warn("kafka offset commit failed", "group", group, "topic", cm.Topic, "partition", cm.Partition, "err", err)
	return errCoordinatorNotAvail
}

// fetchGroup answers one group's offsets; topics nil means all committed.
func (c *Coordinator) fetchGroup(ctx context.Context, group string, topics map[string][]int32, order []string) ([]kmsg.OffsetFetchResponseGroupTopic, int16) {
	if group == "" {
		return nil, errInvalidGroupID
	}
	var out []kmsg.OffsetFetchResponseGroupTopic
	add := func(cm Commit, code int16) {
		if len(out) == 0 || out[len(out)-1].Topic != cm.Topic {
			t := kmsg.NewOffsetFetchResponseGroupTopic()
			t.Topic = cm.Topic
			out = append(out, t)
		}
		p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		p.Partition, p.Offset, p.ErrorCode = cm.Partition, cm.Offset, code
		p.Metadata = kmsg.StringPtr(cm.Metadata)
		out[len(out)-1].Partitions = append(out[len(out)-1].Partitions, p)
	}
	if topics == nil {
		all, err := c.offsets.ListCommitted(ctx, group)
		if err != nil {
			return nil, errCoordinatorNotAvail
		}
		sort.Slice(all, func(i, j int) bool {
			if all[i].Topic != all[j].Topic {
				return all[i].Topic < all[j].Topic
			}
			return all[i].Partition < all[j].Partition
		})
		for _, cm := range all {
			add(cm, errNone)
		}
		return out, errNone
	}
	for _, t := range order {
		for _, p := range topics[t] {
			cm, ok, err := c.offsets.Committed(ctx, group, t, p)
			code := errNone
			if err != nil {
				code = errUnknownServer
			}
			if !ok {
				cm = Commit{Offset: -1}
			}
			cm.Topic, cm.Partition = t, p
			add(cm, code)
		}
	}
	return out, errNone
}

// OffsetFetch handles OffsetFetch v0-v8 (v8: many groups).
func (c *Coordinator) OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.Version = req.Version
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			var topics map[string][]int32
			var order []string
			if rg.Topics != nil {
				topics = map[string][]int32{}
				for _, t := range rg.Topics {
					topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
					order = append(order, t.Topic)
				}
			}
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			g.Topics, g.ErrorCode = c.fetchGroup(ctx, rg.Group, topics, order)
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}
	var topics map[string][]int32
	var order []string
	if req.Topics != nil {
		topics = map[string][]int32{}
		for _, t := range req.Topics {
			topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
			order = append(order, t.Topic)
		}
	}
	gt, code := c.fetchGroup(ctx, req.Group, topics, order)
	resp.ErrorCode = code
	for _, t := range gt {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.Metadata, p.ErrorCode
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// OffsetDelete handles OffsetDelete v0. A group with members keeps its
// offsets (GROUP_SUBSCRIBED_TO_TOPIC): conservative, since we do not decode
// subscriptions.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := kmsg.NewPtrOffsetDeleteResponse()
	resp.Version = req.Version
	if req.Group == "" {
		resp.ErrorCode = errInvalidGroupID
		return resp
	}
	c.mu.Lock()
	g := c.groups[req.Group]
	active := g != nil && len(g.members) > 0
	c.mu.Unlock()
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			if active {
				rp.ErrorCode = errGroupSubscribed
			} else if err := c.offsets.Delete(ctx, req.Group, t.Topic, p.Partition); err != nil {
				rp.ErrorCode = errUnknownServer
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
