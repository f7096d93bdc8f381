package kafka

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/kafka/kauthz"
	"github.com/walrus-go/walrus/node/kafka/ktxn"
)

const (
	apiVersionsKey        int16 = 18
	errUnsupportedVersion       = 35 // kerr.UnsupportedVersion
)

// api is one served API key: the versions served and its handler (a nil
// response sends nothing back).
type api struct {
	min, max int16
	handle   func(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
}

// Groups serves the consumer-group APIs (node/kafka/kgroup). The
// composition root plugs it in (Deps.Groups); only then are these APIs
// advertised. An error closes the client's connection.
type Groups interface {
	FindCoordinator(ctx context.Context, req *kmsg.FindCoordinatorRequest) (*kmsg.FindCoordinatorResponse, error)
	JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) (*kmsg.JoinGroupResponse, error)
	SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) (*kmsg.SyncGroupResponse, error)
	Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) (*kmsg.HeartbeatResponse, error)
	LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) (*kmsg.LeaveGroupResponse, error)
	OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) (*kmsg.OffsetCommitResponse, error)
	OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) (*kmsg.OffsetFetchResponse, error)
	OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) (*kmsg.OffsetDeleteResponse, error)
	ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) (*kmsg.ListGroupsResponse, error)
	DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) (*kmsg.DescribeGroupsResponse, error)
	DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) (*kmsg.DeleteGroupsResponse, error)
}

// GroupVersions are the versions advertised for the Groups APIs.
var GroupVersions = map[int16][2]int16{
	10: {0, 4}, // FindCoordinator
	11: {0, 9}, // JoinGroup
	14: {0, 5}, // SyncGroup
	12: {0, 4}, // Heartbeat
	13: {0, 5}, // LeaveGroup
	8:  {0, 8}, // OffsetCommit
	9:  {0, 8}, // OffsetFetch
	47: {0, 0}, // OffsetDelete
	16: {0, 4}, // ListGroups
	15: {0, 5}, // DescribeGroups
	42: {0, 2}, // DeleteGroups
}

// on adapts a typed handler to the table.
func on[Q kmsg.Request, R kmsg.Response](min, max int16, f func(context.Context, Q) (R, error)) api {
	return api{min: min, max: max, handle: func(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
		r, err := f(ctx, req.(Q))
		if err != nil {
			return nil, err
		}
		return r, nil
	}}
}

// table is every API this node serves, at the versions served. Versions
// stop before topic ids replace names (Produce v13, Fetch v13, Metadata
// v13) and before ListOffsets' max-timestamp query (v7).
func (s *Server) table() map[int16]api {
	t := map[int16]api{
		apiVersionsKey: on(0, 3, func(_ context.Context, r *kmsg.ApiVersionsRequest) (*kmsg.ApiVersionsResponse, error) {
			return s.apiVersions(r.Version), nil
		}),
		0:  {min: 3, max: 9, handle: s.produce},
		1:  on(4, 12, s.fetch),
		2:  on(1, 6, s.listOffsets),
		3:  on(1, 12, s.metadata),
		19: on(2, 7, s.createTopics),
		20: on(1, 6, s.deleteTopics),
		32: on(0, 4, s.describeConfigs),
		37: on(0, 3, s.createPartitions),
		22: on(0, 4, s.initProducerID),
	}
	if g := s.deps.Groups; g != nil {
		handlers := map[int16]func(v [2]int16) api{
			10: func(v [2]int16) api { return on(v[0], v[1], g.FindCoordinator) },
			11: func(v [2]int16) api { return on(v[0], v[1], g.JoinGroup) },
			14: func(v [2]int16) api { return on(v[0], v[1], g.SyncGroup) },
			12: func(v [2]int16) api { return on(v[0], v[1], g.Heartbeat) },
			13: func(v [2]int16) api { return on(v[0], v[1], g.LeaveGroup) },
			8:  func(v [2]int16) api { return on(v[0], v[1], g.OffsetCommit) },
			9:  func(v [2]int16) api { return on(v[0], v[1], g.OffsetFetch) },
			47: func(v [2]int16) api { return on(v[0], v[1], g.OffsetDelete) },
			16: func(v [2]int16) api { return on(v[0], v[1], g.ListGroups) },
			15: func(v [2]int16) api { return on(v[0], v[1], g.DescribeGroups) },
			42: func(v [2]int16) api { return on(v[0], v[1], g.DeleteGroups) },
		}
		for k, v := range GroupVersions {
			t[k] = handlers[k](v)
		}
	}
	// Transactions are not supported: the transactional APIs are not
	// advertised, and a client that sends them anyway gets
	// UNSUPPORTED_VERSION in the response rather than a closed connection.
	t[24] = on(0, 3, ktxn.AddPartitionsToTxn)
	t[25] = on(0, 3, ktxn.AddOffsetsToTxn)
	t[26] = on(0, 3, ktxn.EndTxn)
	t[28] = on(0, 3, ktxn.TxnOffsetCommit)
	if s.deps.Users != nil && s.deps.Users.Enabled() {
		saslAPIs(t)
	}
	if a := s.deps.ACL; a != nil && a.Enabled() {
		g := kauthz.Guard{ACL: a}
		for k, v := range t {
			v.handle = g.Wrap(k, v.handle)
			t[k] = v
		}
	}
	return t
}

// unadvertised are served (with an error) but not listed by ApiVersions.
var unadvertised = []int16{24, 25, 26, 28}

// apiVersions lists exactly what is served.
func (s *Server) apiVersions(version int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = version
	keys := make([]int16, 0, len(s.apis))
	for k := range s.apis {
		if !slices.Contains(unadvertised, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		a := s.apis[k]
		v := kmsg.NewApiVersionsResponseApiKey()
		v.ApiKey, v.MinVersion, v.MaxVersion = k, a.min, a.max
		resp.ApiKeys = append(resp.ApiKeys, v)
	}
	return resp
}
