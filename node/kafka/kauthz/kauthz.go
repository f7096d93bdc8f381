// Package kauthz maps the Kafka listener's APIs onto node/acl checks: the
// same operations and resources the Walrus protocol uses (node/access),
// answered the Kafka way. A denied topic, partition or group gets
// TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED or
// CLUSTER_AUTHORIZATION_FAILED in its place of the response, the allowed
// rest of the request is served, and the connection stays open.
// Metadata, ListGroups and an OffsetFetch of all topics leave out what
// the principal may not describe. docs/kafka.md has the table.
//
// As in Kafka, describe is implied by read, write, delete and admin (a
// producer granted write sees its topic in Metadata).
package kauthz

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/auth"
)

// Authorizer decides (*acl.Authorizer).
type Authorizer interface {
	Enabled() bool
	Allowed(principal string, op acl.Op, r acl.Resource) bool
}

// Handler serves one API (the listener's table entry).
type Handler = func(ctx context.Context, req kmsg.Request) (kmsg.Response, error)

// Guard puts the ACL checks in front of handlers; the principal is
// auth.Principal of the request context.
type Guard struct{ ACL Authorizer }

// The denial codes.
var (
	topicDenied   = kerr.TopicAuthorizationFailed.Code
	groupDenied   = kerr.GroupAuthorizationFailed.Code
	clusterDenied = kerr.ClusterAuthorizationFailed.Code
)

// Allowed reports whether the principal of ctx may do op on r (describe
// also when it may read, write, delete or admin r).
func (g Guard) Allowed(ctx context.Context, op acl.Op, r acl.Resource) bool {
	p := auth.Principal(ctx)
	if g.ACL.Allowed(p, op, r) {
		return true
	}
	if op == acl.Describe {
		for _, o := range []acl.Op{acl.Read, acl.Write, acl.Delete, acl.Admin} {
			if g.ACL.Allowed(p, o, r) {
				return true
			}
		}
	}
	return false
}

func (g Guard) topic(ctx context.Context, op acl.Op, t string) bool {
	return g.Allowed(ctx, op, acl.TopicRes(t))
}

func (g Guard) group(ctx context.Context, op acl.Op, name string) bool {
	return g.Allowed(ctx, op, acl.GroupRes(name))
}

// Unchecked are the API keys that need no permission: ApiVersions, the
// SASL APIs, the transactional APIs (answered UNSUPPORTED_VERSION), and
// InitProducerId, which only hands an authenticated client a producer id
// (Kafka asks for write on any topic; here every produce is checked
// against the topic anyway, and ids come 4,096 to a Raft entry).
var Unchecked = []int16{18, 17, 36, 24, 25, 26, 28, 22}

func (g Guard) wrappers() map[int16]func(Handler) Handler {
	return map[int16]func(Handler) Handler{
		0: g.produce, 1: g.fetch, 2: g.listOffsets, 3: g.metadata,
		19: g.createTopics, 20: g.deleteTopics, 37: g.createPartitions, 32: g.describeConfigs,
		10: g.findCoordinator, 11: g.memberOp, 14: g.memberOp, 12: g.memberOp, 13: g.memberOp,
		8: g.offsetCommit, 9: g.offsetFetch, 47: g.offsetDelete,
		16: g.listGroups, 15: g.describeGroups, 42: g.deleteGroups,
	}
}

// Covers reports whether API key has a decision here: checks, or none
// needed (Unchecked). A served API that is not covered is served
// without any ACL check; the listener's tests require every served key
// to be covered.
func Covers(key int16) bool {
	_, ok := Guard{}.wrappers()[key]
	return ok || slices.Contains(Unchecked, key)
}

// Wrap returns h with the checks of API key in front; h itself for the
// APIs that need none (Unchecked) or are not covered.
func (g Guard) Wrap(key int16, h Handler) Handler {
	if w := g.wrappers()[key]; w != nil {
		return w(h)
	}
	return h
}

// split partitions xs by ok; yes is never nil (an empty, not absent,
// list: for Metadata nil means every topic).
func split[T any](xs []T, ok func(T) bool) (yes, no []T) {
	yes = make([]T, 0, len(xs))
	for _, x := range xs {
		if ok(x) {
			yes = append(yes, x)
		} else {
			no = append(no, x)
		}
	}
	return yes, no
}

// serve calls h with the allowed part of the request (call), or answers
// an empty response of req's kind when nothing is allowed (none).
func serve(ctx context.Context, h Handler, req kmsg.Request, anyAllowed bool) (kmsg.Response, error) {
	if anyAllowed {
		return h(ctx, req)
	}
	return req.ResponseKind(), nil
}

// partial serves the allowed part of a request whose list (*list(req))
// is checked entry by entry: with nothing denied h gets req itself;
// otherwise h gets a copy holding the allowed entries (or an empty
// response is made when none is), and deny adds the denied entries'
// answers to the response.
func partial[Q any, T any, R kmsg.Response](ctx context.Context, h Handler, req *Q, list func(*Q) *[]T, ok func(T) bool, deny func(R, []T)) (kmsg.Response, error) {
	yes, no := split(*list(req), ok)
	if len(no) == 0 {
		return h(ctx, any(req).(kmsg.Request))
	}
	r := *req
	*list(&r) = yes
	resp, err := serve(ctx, h, any(&r).(kmsg.Request), len(yes) > 0)
	if err != nil || resp == nil {
		return nil, err
	}
	out := resp.(R)
	deny(out, no)
	return out, nil
}

func (g Guard) produce(h Handler) Handler {
	return func(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
		req := kreq.(*kmsg.ProduceRequest)
		resp, err := partial(ctx, h, req, func(r *kmsg.ProduceRequest) *[]kmsg.ProduceRequestTopic { return &r.Topics },
			func(t kmsg.ProduceRequestTopic) bool { return g.topic(ctx, acl.Write, t.Topic) },
			func(pr *kmsg.ProduceResponse, no []kmsg.ProduceRequestTopic) {
				for _, t := range no {
					rt := kmsg.NewProduceResponseTopic()
					rt.Topic = t.Topic
					for _, p := range t.Partitions {
						rp := kmsg.NewProduceResponseTopicPartition()
						rp.Partition, rp.ErrorCode, rp.BaseOffset, rp.LogAppendTime = p.Partition, topicDenied, -1, -1
						rt.Partitions = append(rt.Partitions, rp)
					}
					pr.Topics = append(pr.Topics, rt)
				}
			})
		if req.Acks == 0 {
			return nil, err // acks=0: no response
		}
		return resp, err
	}
}

func (g Guard) fetch(h Handler) Handler {
	return func(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
		return partial(ctx, h, kreq.(*kmsg.FetchRequest), func(r *kmsg.FetchRequest) *[]kmsg.FetchRequestTopic { return &r.Topics },
			func(t kmsg.FetchRequestTopic) bool { return g.topic(ctx, acl.Read, t.Topic) },
			func(fr *kmsg.FetchResponse, no []kmsg.FetchRequestTopic) {
				for _, t := range no {
					rt := kmsg.NewFetchResponseTopic()
					rt.Topic = t.Topic
					for _, p := range t.Partitions {
						rp := kmsg.NewFetchResponseTopicPartition()
						rp.Partition, rp.ErrorCode, rp.RecordBatches = p.Partition, topicDenied, []byte{}
						rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
						rt.Partitions = append(rt.Partitions, rp)
					}
					fr.Topics = append(fr.Topics, rt)
				}
			})
	}
}

func (g Guard) listOffsets(h Handler) Handler {
	return func(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
		return partial(ctx, h, kreq.(*kmsg.ListOffsetsRequest), func(r *kmsg.ListOffsetsRequest) *[]kmsg.ListOffsetsRequestTopic { return &r.Topics },
			func(t kmsg.ListOffsetsRequestTopic) bool { return g.topic(ctx, acl.Read, t.Topic) },
			func(lr *kmsg.ListOffsetsResponse, no []kmsg.ListOffsetsRequestTopic) {
				for _, t := range no {
					rt := kmsg.NewListOffsetsResponseTopic()
					rt.Topic = t.Topic
					for _, p := range t.Partitions {
						rp := kmsg.NewListOffsetsResponseTopicPartition()
						rp.Partition, rp.ErrorCode, rp.Timestamp, rp.Offset = p.Partition, topicDenied, -1, -1
						rt.Partitions = append(rt.Partitions, rp)
					}
					lr.Topics = append(lr.Topics, rt)
				}
			})
	}
}

// metadata: every topic (a nil list) shows only the topics the principal
// may describe; a named topic it may not describe is answered
// TOPIC_AUTHORIZATION_FAILED; auto-creation needs create on the topic.
func (g Guard) metadata(h Handler) Handler {
	return func(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
		req := kreq.(*kmsg.MetadataRequest)
		if req.Topics == nil {
			resp, err := h(ctx, req)
			if err != nil {
				return nil, err
			}
			mr := resp.(*kmsg.MetadataResponse)
			mr.Topics, _ = split(mr.Topics, func(t kmsg.MetadataResponseTopic) bool {
				return t.Topic != nil && g.topic(ctx, acl.Describe, *t.Topic)
			})
			return mr, nil
		}
		named := func(t kmsg.MetadataRequestTopic) string {
			if t.Topic == nil {
				return ""
			}
			return *t.Topic
		}
		seen, denied := split(req.Topics, func(t kmsg.MetadataRequestTopic) bool {
			return t.Topic == nil || g.topic(ctx, acl.Describe, *t.Topic) // by id: the handler answers
		})
		create, plain := seen[:0:0], seen[:0:0]
		if req.AllowAutoTopicCreation {
			create, plain = split(seen, func(t kmsg.MetadataRequestTopic) bool { return g.topic(ctx, acl.Create, named(t)) })
		} else {
			plain = seen
		}
		r := *req
		r.Topics, r.AllowAutoTopicCreation = plain, false
		resp, err := h(ctx, &r)
		if err != nil {
			return nil, err
		}
		mr := resp.(*kmsg.MetadataResponse)
		if len(create) > 0 {
			r.Topics, r.AllowAutoTopicCreation = create, true
			more, err := h(ctx, &r)
			if err != nil {
				return nil, err
			}
			mr.Topics = append(mr.Topics, more.(*kmsg.MetadataResponse).Topics...)
		}
		for _, t := range denied {
			rt := kmsg.NewMetadataResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, topicDenied
			mr.Topics = append(mr.Topics, rt)
		}
		return mr, nil
	}
}

// createTopics needs create on the topic, and also admin when it sets a
// replication factor or configs (as CREATE with options does).
func (g Guard) createTopics(h Handler) Handler {
	return func(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
		return partial(ctx, h, kreq.(*kmsg.CreateTopicsRequest), func(r *kmsg.CreateTopicsRequest) *[]kmsg.CreateTopicsRequestTopic { return &r.Topics },
			func(t kmsg.CreateTopicsRequestTopic) bool {
				if !g.topic(ctx, acl.Create, t.Topic) {
					return false
				}
				return (t.ReplicationFactor == -1 && len(t.Configs) == 0) || g.topic(ctx, acl.Admin, t.Topic)
			},
			func(cr *kmsg.CreateTopicsResponse, no []kmsg.CreateTopicsRequestTopic) {
				for _, t := range no {
					rt := kmsg.NewCreateTopicsResponseTopic()
					msg := "not authorized: " + auth.Principal(ctx) + " may not create topic:" + t.Topic + " (with a replication factor or configs also admin)"
					rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, topicDenied, &msg
					rt.NumPartitions, rt.ReplicationFactor = -1, -1
					cr.Topics = append(cr.Topics, rt)
				}
			})
	}
}

// deleteTopics needs admin on the topic (as DELETE).
func (g Guard) deleteTopics(h Handler) Handler {
	return func(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
		req := kreq.(*kmsg.DeleteTopicsRequest)
		admin := func(name string) bool { return g.topic(ctx, acl.Admin, name) }
		names, deniedNames := split(req.TopicNames, admin)
		topics, deniedTopics := split(req.Topics, func(t kmsg.DeleteTopicsRequestTopic) bool { return t.Topic == nil || admin(*t.Topic) })
		if len(deniedNames)+len(deniedTopics) == 0 {
			return h(ctx, req)
		}
		r := *req
		r.TopicNames, r.Topics = names, topics
		resp, err := serve(ctx, h, &r, len(names)+len(topics) > 0)
		if err != nil {
			return nil, err
		}
		dr := resp.(*kmsg.DeleteTopicsResponse)
		for _, t := range deniedTopics {
			deniedNames = append(deniedNames, *t.Topic)
		}
		for _, name := range deniedNames {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = &name, topicDenied
			dr.Topics = append(dr.Topics, rt)
		}
		return dr, nil
	}
}

// createPartitions needs admin on the topic (as ALTER).
func (g Guard) createPartitions(h Handler) Handler {
	return func(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
		return partial(ctx, h, kreq.(*kmsg.CreatePartitionsRequest), func(r *kmsg.CreatePartitionsRequest) *[]kmsg.CreatePartitionsRequestTopic { return &r.Topics },
			func(t kmsg.CreatePartitionsRequestTopic) bool { return g.topic(ctx, acl.Admin, t.Topic) },
			func(cr *kmsg.CreatePartitionsResponse, no []kmsg.CreatePartitionsRequestTopic) {
				for _, t := range no {
					rt := kmsg.NewCreatePartitionsResponseTopic()
					rt.Topic, rt.ErrorCode = t.Topic, topicDenied
					cr.Topics = append(cr.Topics, rt)
				}
			})
	}
}

// describeConfigs needs describe on a topic (as STATE), describe on the
// cluster for a broker.
func (g Guard) describeConfigs(h Handler) Handler {
	return func(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
		code := func(r kmsg.DescribeConfigsRequestResource) int16 {
			switch r.ResourceType {
			case kmsg.ConfigResourceTypeTopic:
				if !g.topic(ctx, acl.Describe, r.ResourceName) {
					return topicDenied
				}
			case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
				if !g.Allowed(ctx, acl.Describe, acl.ClusterRes()) {
					return clusterDenied
				}
			}
			return 0
		}
		return partial(ctx, h, kreq.(*kmsg.DescribeConfigsRequest), func(r *kmsg.DescribeConfigsRequest) *[]kmsg.DescribeConfigsRequestResource { return &r.Resources },
			func(r kmsg.DescribeConfigsRequestResource) bool { return code(r) == 0 },
			func(dr *kmsg.DescribeConfigsResponse, no []kmsg.DescribeConfigsRequestResource) {
				for _, res := range no {
					rr := kmsg.NewDescribeConfigsResponseResource()
					rr.ResourceType, rr.ResourceName, rr.ErrorCode = res.ResourceType, res.ResourceName, code(res)
					dr.Resources = append(dr.Resources, rr)
				}
			})
	}
}
