package kafka_test

import (
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/nodetest"
)

// TestKafkaACLs: the Walrus ACLs apply to Kafka APIs (secureKafka's
// rules): denied topics and groups are answered *_AUTHORIZATION_FAILED in
// their place, the allowed rest of a request is served, Metadata hides
// what the principal may not describe, and the connection stays open.
func TestKafkaACLs(t *testing.T) {
	_, addrs := secureKafka(t)
	ctx := testCtx(t)
	admin := newClient(t, addrs, scramAs(nodetest.AdminUser, nodetest.AdminPassword))
	aadm := kadm.NewClient(admin)
	createTopic(t, aadm, "sk-acl", 1, nil)
	createTopic(t, aadm, "secret", 1, nil)
	produceAll(t, admin, []*kgo.Record{{Topic: "sk-acl", Value: []byte("a")}, {Topic: "secret", Value: []byte("s")}})

	reader := newClient(t, addrs, scramAs("reader", "reader-pw"))
	writer := newClient(t, addrs, scramAs("writer", "writer-pw"))
	radm, wadm := kadm.NewClient(reader), kadm.NewClient(writer)

	t.Run("metadata hides topics", func(t *testing.T) {
		for name, adm := range map[string]*kadm.Client{"reader": radm, "writer": wadm} {
			topics, err := adm.ListTopics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := topics.Names(); !slices.Equal(got, []string{"sk-acl"}) {
				t.Fatalf("%s sees topics %v, want [sk-acl]", name, got)
			}
		}
		req := kmsg.NewPtrMetadataRequest()
		for _, name := range []string{"secret", "sk-acl"} {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, reader)
		if err != nil {
			t.Fatal(err)
		}
		codes := map[string]int16{}
		for _, rt := range resp.Topics {
			codes[*rt.Topic] = rt.ErrorCode
		}
		if codes["secret"] != kerr.TopicAuthorizationFailed.Code || codes["sk-acl"] != 0 || len(codes) != 2 {
			t.Fatalf("metadata codes %v", codes)
		}
	})
	t.Run("produce needs write", func(t *testing.T) {
		err := reader.ProduceSync(ctx, &kgo.Record{Topic: "sk-acl", Value: []byte("no")}).FirstErr()
		if !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("reader produce: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		if err := writer.ProduceSync(ctx, &kgo.Record{Topic: "sk-acl", Value: []byte("b")}).FirstErr(); err != nil {
			t.Fatalf("writer produce: %v", err)
		}
	})
	t.Run("fetch needs read", func(t *testing.T) {
		fetch := func(cl *kgo.Client) map[string]kmsg.FetchResponseTopicPartition {
			req := kmsg.NewPtrFetchRequest()
			req.MaxBytes = 1 << 20
			for _, name := range []string{"sk-acl", "secret"} {
				ft := kmsg.NewFetchRequestTopic()
				ft.Topic = name
				fp := kmsg.NewFetchRequestTopicPartition()
				fp.PartitionMaxBytes = 1 << 20
				ft.Partitions = append(ft.Partitions, fp)
				req.Topics = append(req.Topics, ft)
			}
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]kmsg.FetchResponseTopicPartition{}
			for _, rt := range resp.Topics {
				out[rt.Topic] = rt.Partitions[0]
			}
			return out
		}
		got := fetch(reader)
		if got["secret"].ErrorCode != kerr.TopicAuthorizationFailed.Code || got["sk-acl"].ErrorCode != 0 || len(got["sk-acl"].RecordBatches) == 0 {
			t.Fatalf("reader fetch: %+v", got)
		}
		got = fetch(writer)
		if got["secret"].ErrorCode != kerr.TopicAuthorizationFailed.Code || got["sk-acl"].ErrorCode != kerr.TopicAuthorizationFailed.Code {
			t.Fatalf("writer fetch: %+v", got)
		}
		// kgo resolves partitions through Metadata first; ask directly.
		lo := kmsg.NewPtrListOffsetsRequest()
		lo.Version = 6
		for _, name := range []string{"secret", "sk-acl"} {
			lt := kmsg.NewListOffsetsRequestTopic()
			lt.Topic = name
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Timestamp = -1
			lt.Partitions = append(lt.Partitions, lp)
			lo.Topics = append(lo.Topics, lt)
		}
		lresp := kmsg.NewPtrListOffsetsResponse()
		roundTrip(t, plainRaw(t, addrs[0], "reader", "reader-pw"), lo, lresp)
		ends := map[string]kmsg.ListOffsetsResponseTopicPartition{}
		for _, rt := range lresp.Topics {
			ends[rt.Topic] = rt.Partitions[0]
		}
		if ends["secret"].ErrorCode != kerr.TopicAuthorizationFailed.Code || ends["sk-acl"].ErrorCode != 0 || ends["sk-acl"].Offset != 2 {
			t.Fatalf("reader ListOffsets: %+v", ends)
		}
	})
	t.Run("group commit needs read on the group and the topic", func(t *testing.T) {
		offs := func(topic string) kadm.Offsets {
			o := make(kadm.Offsets)
			o.Add(kadm.Offset{Topic: topic, Partition: 0, At: 1, LeaderEpoch: -1})
			return o
		}
		resps, err := wadm.CommitOffsets(ctx, "rg-1", offs("sk-acl"))
		if err == nil {
			err = resps.Error()
		}
		if !errors.Is(err, kerr.GroupAuthorizationFailed) {
			t.Fatalf("writer commit to rg-1: %v, want GROUP_AUTHORIZATION_FAILED", err)
		}
		// A raw commit (kadm leaves out topics Metadata hides): the
		// allowed topic is committed, the other refused in its place.
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = "rg-1", -1
		for _, name := range []string{"secret", "sk-acl"} {
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = name
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Offset = 1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		cresp, err := req.RequestWith(ctx, reader)
		if err != nil {
			t.Fatal(err)
		}
		codes := map[string]int16{}
		for _, rt := range cresp.Topics {
			codes[rt.Topic] = rt.Partitions[0].ErrorCode
		}
		if codes["secret"] != kerr.TopicAuthorizationFailed.Code || codes["sk-acl"] != 0 || len(codes) != 2 {
			t.Fatalf("reader commit codes %v", codes)
		}
		fetched, err := radm.FetchOffsets(ctx, "rg-1")
		if o, ok := fetched.Lookup("sk-acl", 0); err != nil || !ok || o.At != 1 {
			t.Fatalf("reader fetch offsets of rg-1: %+v %v", o, err)
		}
		if _, err := wadm.FetchOffsets(ctx, "rg-1"); !errors.Is(err, kerr.GroupAuthorizationFailed) {
			t.Fatalf("writer fetch offsets of rg-1: %v", err)
		}
		resps, err = aadm.CommitOffsets(ctx, "zz-admin", offs("sk-acl"))
		if err != nil || resps.Error() != nil {
			t.Fatalf("admin commit: %v %v", err, resps.Error())
		}
		groups, err := radm.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups.Groups() {
			if !strings.HasPrefix(g, "rg") {
				t.Fatalf("reader lists group %s it may not describe", g)
			}
		}
		if _, err := radm.DeleteGroup(ctx, "rg-1"); !errors.Is(err, kerr.GroupAuthorizationFailed) {
			t.Fatalf("reader delete group: %v", err)
		}
	})
	t.Run("admin APIs", func(t *testing.T) {
		denied := func(what string, err, rerr error) {
			t.Helper()
			if !errors.Is(err, kerr.TopicAuthorizationFailed) && !errors.Is(rerr, kerr.TopicAuthorizationFailed) {
				t.Fatalf("%s: %v / %v, want TOPIC_AUTHORIZATION_FAILED", what, err, rerr)
			}
		}
		r, err := radm.CreateTopic(ctx, 1, -1, nil, "sk-new")
		denied("reader create", err, r.Err)
		if r, err := wadm.CreateTopic(ctx, 1, -1, nil, "sk-new"); err != nil || r.Err != nil {
			t.Fatalf("writer create: %v %v", err, r.Err)
		}
		r, err = wadm.CreateTopic(ctx, 1, 1, nil, "sk-rf")
		denied("writer create with a replication factor (needs admin)", err, r.Err)
		del, err := wadm.DeleteTopics(ctx, "sk-new")
		denied("writer delete", err, del["sk-new"].Err)
		cp, err := wadm.CreatePartitions(ctx, 2, "sk-new")
		denied("writer create partitions", err, cp["sk-new"].Err)
		cfgs, err := wadm.DescribeTopicConfigs(ctx, "secret")
		var cerr error
		if err == nil {
			rc, _ := cfgs.On("secret", nil)
			cerr = rc.Err
		}
		denied("writer describe configs of secret", err, cerr)
		if _, err := wadm.DescribeTopicConfigs(ctx, "sk-new"); err != nil {
			t.Fatalf("writer describe configs of sk-new: %v", err)
		}
		// The connection stayed open through every denial.
		if err := reader.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestPartitionLogsACL: on the Walrus port the partition log "T#p" of a
// Kafka topic is checked as T, so the rule on sk-other (exact name) that
// lets member read it through Kafka also covers FETCH of sk-other#1.
func TestPartitionLogsACL(t *testing.T) {
	n, addrs := secureKafka(t)
	admin := newClient(t, addrs, scramAs(nodetest.AdminUser, nodetest.AdminPassword))
	createTopic(t, kadm.NewClient(admin), "sk-other", 2, nil)
	createTopic(t, kadm.NewClient(admin), "sk-no", 2, nil)
	ctx := testCtx(t)
	c, err := client.Dial(ctx, n.ClientAddr(), client.Options{User: "member", Password: "member-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	for _, log := range []string{"sk-other", "sk-other#1"} {
		if _, err := c.Fetch(ctx, log, 0, 10); err != nil {
			t.Fatalf("member FETCH %s: %v", log, err)
		}
	}
	if _, err := c.Fetch(ctx, "sk-no#1", 0, 10); err == nil || !strings.Contains(err.Error(), "may not read topic:sk-no") {
		t.Fatalf("member FETCH sk-no#1: %v", err)
	}
}

// plainRaw dials addr and authenticates with SASL/PLAIN.
func plainRaw(t *testing.T, addr, user, pw string) net.Conn {
	t.Helper()
	c := dialRaw(t, addr)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	hr := kmsg.NewPtrSASLHandshakeResponse()
	roundTrip(t, c, hs, hr)
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 2, []byte("\x00"+user+"\x00"+pw)
	ar := kmsg.NewPtrSASLAuthenticateResponse()
	roundTrip(t, c, au, ar)
	if hr.ErrorCode != 0 || ar.ErrorCode != 0 {
		t.Fatalf("PLAIN as %s: codes %d %d", user, hr.ErrorCode, ar.ErrorCode)
	}
	return c
}
