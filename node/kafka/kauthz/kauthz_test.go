package kauthz_test

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/auth"
	"github.com/walrus-go/walrus/node/kafka/kauthz"
)

var (
	topicDenied   = kerr.TopicAuthorizationFailed.Code
	groupDenied   = kerr.GroupAuthorizationFailed.Code
	clusterDenied = kerr.ClusterAuthorizationFailed.Code
)

func guard(t *testing.T) kauthz.Guard {
	t.Helper()
	a, err := acl.New([]acl.Spec{
		{Principal: "u", Resource: "ok-*", Operations: []string{"read", "write", "create"}},
		{Principal: "u", Resource: "seen", Operations: []string{"describe"}},
		{Principal: "u", Resource: "group:g*", Operations: []string{"read", "delete"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return kauthz.Guard{ACL: a}
}

var ctx = auth.WithPrincipal(context.Background(), "u")

// served records what reached the handler and answers every topic of a
// request with code 0.
type served struct{ reqs []kmsg.Request }

func (s *served) handle(_ context.Context, req kmsg.Request) (kmsg.Response, error) {
	s.reqs = append(s.reqs, req)
	resp := req.ResponseKind()
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		for _, t := range r.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = t.Topic
			resp.(*kmsg.ProduceResponse).Topics = append(resp.(*kmsg.ProduceResponse).Topics, rt)
		}
		if r.Acks == 0 {
			return nil, nil
		}
	case *kmsg.MetadataRequest:
		names := []string{"ok-1", "secret", "seen"}
		if r.Topics != nil {
			names = nil
			for _, t := range r.Topics {
				names = append(names, *t.Topic)
			}
		}
		for _, n := range names {
			rt := kmsg.NewMetadataResponseTopic()
			rt.Topic = kmsg.StringPtr(n)
			if r.AllowAutoTopicCreation {
				rt.ErrorCode = -2 // marks "auto-created"
			}
			resp.(*kmsg.MetadataResponse).Topics = append(resp.(*kmsg.MetadataResponse).Topics, rt)
		}
	case *kmsg.ListGroupsRequest:
		for _, g := range []string{"g1", "h1"} {
			rg := kmsg.NewListGroupsResponseGroup()
			rg.Group = g
			resp.(*kmsg.ListGroupsResponse).Groups = append(resp.(*kmsg.ListGroupsResponse).Groups, rg)
		}
	}
	return resp, nil
}

func TestProduce(t *testing.T) {
	g, s := guard(t), &served{}
	h := g.Wrap(0, s.handle)
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	for _, name := range []string{"ok-1", "seen", "secret"} {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = name
		rt.Partitions = append(rt.Partitions, kmsg.NewProduceRequestTopicPartition())
		req.Topics = append(req.Topics, rt)
	}
	resp, err := h(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.reqs[0].(*kmsg.ProduceRequest).Topics; len(got) != 1 || got[0].Topic != "ok-1" {
		t.Fatalf("handler got %+v", got)
	}
	codes := map[string]int16{}
	for _, rt := range resp.(*kmsg.ProduceResponse).Topics {
		codes[rt.Topic] = 0
		for _, p := range rt.Partitions {
			codes[rt.Topic] = p.ErrorCode
		}
	}
	if codes["ok-1"] != 0 || codes["seen"] != topicDenied || codes["secret"] != topicDenied || len(codes) != 3 {
		t.Fatalf("codes %v", codes)
	}
	if len(req.Topics) != 3 {
		t.Fatal("the request was modified in place")
	}
	req.Acks = 0
	if resp, err := h(ctx, req); resp != nil || err != nil {
		t.Fatalf("acks=0 answered %v %v", resp, err)
	}
	// Nothing allowed: the handler is not called.
	s.reqs = nil
	req.Acks, req.Topics = -1, req.Topics[2:]
	if resp, _ := h(ctx, req); len(s.reqs) != 0 || resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode != topicDenied {
		t.Fatalf("all denied: handler called %d times, answer %+v", len(s.reqs), resp)
	}
}

func TestMetadata(t *testing.T) {
	g, s := guard(t), &served{}
	h := g.Wrap(3, s.handle)
	resp, _ := h(ctx, kmsg.NewPtrMetadataRequest()) // every topic
	var names []string
	for _, rt := range resp.(*kmsg.MetadataResponse).Topics {
		names = append(names, *rt.Topic)
	}
	if !slices.Equal(names, []string{"ok-1", "seen"}) {
		t.Fatalf("every topic shows %v", names)
	}
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = true
	for _, n := range []string{"ok-new", "seen", "secret"} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, rt)
	}
	resp, _ = h(ctx, req)
	codes := map[string]int16{}
	for _, rt := range resp.(*kmsg.MetadataResponse).Topics {
		codes[*rt.Topic] = rt.ErrorCode
	}
	// ok-new may be auto-created (create granted), seen only described.
	if codes["ok-new"] != -2 || codes["seen"] != 0 || codes["secret"] != topicDenied || len(codes) != 3 {
		t.Fatalf("codes %v", codes)
	}
}

func TestDescribeConfigs(t *testing.T) {
	g, s := guard(t), &served{}
	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, r := range []struct {
		kind kmsg.ConfigResourceType
		name string
	}{{kmsg.ConfigResourceTypeTopic, "ok-1"}, {kmsg.ConfigResourceTypeTopic, "secret"}, {kmsg.ConfigResourceTypeBroker, "1"}} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.kind, r.name
		req.Resources = append(req.Resources, rr)
	}
	resp, _ := g.Wrap(32, s.handle)(ctx, req)
	codes := map[string]int16{}
	for _, r := range resp.(*kmsg.DescribeConfigsResponse).Resources {
		codes[r.ResourceName] = r.ErrorCode
	}
	if codes["secret"] != topicDenied || codes["1"] != clusterDenied || len(s.reqs[0].(*kmsg.DescribeConfigsRequest).Resources) != 1 {
		t.Fatalf("codes %v", codes)
	}
}

func TestGroups(t *testing.T) {
	g, s := guard(t), &served{}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group = "h1"
	resp, _ := g.Wrap(12, s.handle)(ctx, hb)
	if resp.(*kmsg.HeartbeatResponse).ErrorCode != groupDenied || len(s.reqs) != 0 {
		t.Fatalf("heartbeat of h1: %+v", resp)
	}
	hb.Group = "g1"
	if resp, _ := g.Wrap(12, s.handle)(ctx, hb); resp.(*kmsg.HeartbeatResponse).ErrorCode != 0 {
		t.Fatal("heartbeat of g1 denied")
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version, fc.CoordinatorKey = 3, "h1"
	if resp, _ := g.Wrap(10, s.handle)(ctx, fc); resp.(*kmsg.FindCoordinatorResponse).ErrorCode != groupDenied {
		t.Fatal("FindCoordinator v3 of h1 allowed")
	}
	fc.Version, fc.CoordinatorKeys = 4, []string{"g1", "h1"}
	resp, _ = g.Wrap(10, s.handle)(ctx, fc)
	if cs := resp.(*kmsg.FindCoordinatorResponse).Coordinators; len(cs) != 1 || cs[0].Key != "h1" || cs[0].ErrorCode != groupDenied {
		t.Fatalf("FindCoordinator v4: %+v", cs)
	}
	lg, _ := g.Wrap(16, s.handle)(ctx, kmsg.NewPtrListGroupsRequest())
	if gs := lg.(*kmsg.ListGroupsResponse).Groups; len(gs) != 1 || gs[0].Group != "g1" {
		t.Fatalf("ListGroups: %+v", gs)
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version = 8
	for _, name := range []string{"g1", "h1"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = name
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic, rt.Partitions = "secret", []int32{0}
		rg.Topics = append(rg.Topics, rt)
		of.Groups = append(of.Groups, rg)
	}
	resp, _ = g.Wrap(9, s.handle)(ctx, of)
	for _, rg := range resp.(*kmsg.OffsetFetchResponse).Groups {
		switch {
		case rg.Group == "h1" && rg.ErrorCode != groupDenied,
			rg.Group == "g1" && (len(rg.Topics) != 1 || rg.Topics[0].Partitions[0].ErrorCode != topicDenied):
			t.Fatalf("OffsetFetch v8 group %s: %+v", rg.Group, rg)
		}
	}
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "h1"
	if resp, _ := g.Wrap(47, s.handle)(ctx, od); resp.(*kmsg.OffsetDeleteResponse).ErrorCode != groupDenied {
		t.Fatal("OffsetDelete of h1 allowed")
	}
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{"g1", "h1"}
	resp, _ = g.Wrap(42, s.handle)(ctx, dg)
	if gs := resp.(*kmsg.DeleteGroupsResponse).Groups; len(gs) != 1 || gs[0].Group != "h1" || gs[0].ErrorCode != groupDenied {
		t.Fatalf("DeleteGroups: %+v", gs)
	}
	// APIs without checks pass through.
	av := kmsg.NewPtrApiVersionsRequest()
	if _, err := g.Wrap(18, s.handle)(context.Background(), av); err != nil || s.reqs[len(s.reqs)-1] != kmsg.Request(av) {
		t.Fatal("ApiVersions not passed through")
	}
}
