package kafka_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/nodetest"
)

// kafkaCluster starts a 3-node cluster with Kafka listeners on free
// loopback ports and returns it with its Kafka addresses.
func kafkaCluster(t *testing.T, tweak func(*node.Config)) ([]*nodetest.Node, []string) {
	t.Helper()
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) {
		c.KafkaPort = -1
		if tweak != nil {
			tweak(c)
		}
	})
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.KafkaAddr())
	}
	return nodes, addrs
}

func newClient(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addrs...), kgo.DisableIdempotentWrite(),
		kgo.RetryTimeout(30 * time.Second), kgo.MetadataMinAge(100 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := adm.CreateTopic(testCtx(t), partitions, -1, configs, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create %s: %v %v %v", topic, err, resp.Err, resp.ErrMessage)
	}
}

// sampleRecords are records with keys (null, empty, binary), values
// (null, empty, binary, text), headers and producer timestamps.
func sampleRecords(topic string, n int) []*kgo.Record {
	var out []*kgo.Record
	for i := range n {
		r := &kgo.Record{Topic: topic, Timestamp: time.UnixMilli(1_600_000_000_000 + int64(i)*7)}
		switch i % 4 {
		case 0:
			r.Key, r.Value = []byte(fmt.Sprintf("key-%d", i)), []byte(fmt.Sprintf("value %d", i))
		case 1:
			r.Key, r.Value = nil, []byte{0xff, 0x00, byte(i), 0xfe}
			r.Headers = []kgo.RecordHeader{{Key: "h1", Value: []byte("v1")}, {Key: "empty", Value: []byte{}}, {Key: "null", Value: nil}}
		case 2:
			r.Key, r.Value = []byte{}, nil
		case 3:
			r.Key, r.Value = []byte{0x80, byte(i)}, []byte{}
			r.Headers = []kgo.RecordHeader{{Key: "k", Value: bytes.Repeat([]byte{byte(i)}, 100)}}
		}
		out = append(out, r)
	}
	return out
}

func produceAll(t *testing.T, cl *kgo.Client, recs []*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consume reads n records of topic from the start of every partition.
func consume(t *testing.T, addrs []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, addrs, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	ctx := testCtx(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s: %v", len(out), n, topic, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	if len(out) != n {
		t.Fatalf("consumed %d records, want %d", len(out), n)
	}
	return out
}

// sameRecord compares what Kafka promises to keep: key, value (with
// nullness), headers, timestamp.
func sameRecord(t *testing.T, got, want *kgo.Record) {
	t.Helper()
	if !bytes.Equal(got.Key, want.Key) || (got.Key == nil) != (want.Key == nil) ||
		!bytes.Equal(got.Value, want.Value) || (got.Value == nil) != (want.Value == nil) ||
		!got.Timestamp.Equal(want.Timestamp) || len(got.Headers) != len(want.Headers) {
		t.Fatalf("record at offset %d: got key %q value %q ts %v headers %v; want key %q value %q ts %v headers %v",
			got.Offset, got.Key, got.Value, got.Timestamp, got.Headers, want.Key, want.Value, want.Timestamp, want.Headers)
	}
	for i, h := range got.Headers {
		w := want.Headers[i]
		if h.Key != w.Key || !bytes.Equal(h.Value, w.Value) || (h.Value == nil) != (w.Value == nil) {
			t.Fatalf("record at offset %d header %d: got %q=%q want %q=%q", got.Offset, i, h.Key, h.Value, w.Key, w.Value)
		}
	}
}

func TestProduceConsumeCodecs(t *testing.T) {
	nodes, addrs := kafkaCluster(t, nil)
	adm := kadm.NewClient(newClient(t, addrs))
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		topic := "codec-" + name
		createTopic(t, adm, topic, 1, nil)
		want := sampleRecords(topic, 40)
		produceAll(t, newClient(t, addrs, kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(5*time.Millisecond)), want)
		got := consume(t, addrs, topic, len(want))
		for i := range want {
			if got[i].Offset != int64(i) {
				t.Fatalf("%s: record %d has offset %d", name, i, got[i].Offset)
			}
			sameRecord(t, got[i], want[i])
		}
	}
	// The text protocol reads the same log: FETCH sends binary values
	// base64 and text values as they are.
	c := nodetest.Dial(t, nodes[1])
	f, err := c.Fetch(testCtx(t), "codec-none", 0, 4)
	if err != nil || len(f.Entries) != 4 {
		t.Fatalf("FETCH: %+v %v", f, err)
	}
	if f.Entries[0].Payload != "value 0" || f.Entries[0].Encoding != "" {
		t.Fatalf("FETCH text entry: %+v", f.Entries[0])
	}
	if b, _ := base64.StdEncoding.DecodeString(f.Entries[1].Payload); f.Entries[1].Encoding != "base64" || !bytes.Equal(b, []byte{0xff, 0x00, 1, 0xfe}) {
		t.Fatalf("FETCH binary entry: %+v", f.Entries[1])
	}
	// GET hands out the value bytes as they are (the frame is
	// length-delimited): binary survives, a null value is empty.
	for i, want := range [][]byte{[]byte("value 0"), {0xff, 0x00, 1, 0xfe}, {}} {
		p, ok, err := c.Get(testCtx(t), "codec-none")
		if err != nil || !ok || !bytes.Equal(p, want) {
			t.Fatalf("GET %d: %q %v %v, want %q", i, p, ok, err, want)
		}
	}
}

func TestAcks(t *testing.T) {
	_, addrs := kafkaCluster(t, nil)
	adm := kadm.NewClient(newClient(t, addrs))
	var all []*kgo.Record
	topic := "acks"
	createTopic(t, adm, topic, 1, nil)
	for _, acks := range []kgo.Acks{kgo.NoAck(), kgo.LeaderAck(), kgo.AllISRAcks()} {
		recs := sampleRecords(topic, 10)
		produceAll(t, newClient(t, addrs, kgo.RequiredAcks(acks)), recs)
		if acks == kgo.NoAck() {
			// No answer to wait for: wait until the log holds them.
			nodetest.Eventually(t, 30*time.Second, "acks=0 records stored", func() bool {
				o, err := adm.ListEndOffsets(testCtx(t), topic)
				e, ok := o.Lookup(topic, 0)
				return err == nil && ok && e.Offset == 10
			})
		}
		all = append(all, recs...)
	}
	got := consume(t, addrs, topic, len(all))
	for i := range all {
		sameRecord(t, got[i], all[i])
	}
}

func TestListOffsetsByTime(t *testing.T) {
	_, addrs := kafkaCluster(t, nil)
	cl := newClient(t, addrs)
	adm := kadm.NewClient(cl)
	topic := "times"
	createTopic(t, adm, topic, 1, nil)
	// Producer timestamps out of order: the answer is the first offset
	// whose timestamp is >= t, not a search by halves.
	var recs []*kgo.Record
	for _, ts := range []int64{1000, 3000, 2000, 5000, 4000} {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte("x"), Timestamp: time.UnixMilli(ts)})
	}
	produceAll(t, cl, recs)
	ctx := testCtx(t)
	for _, c := range []struct{ at, want int64 }{{0, 0}, {1000, 0}, {1500, 1}, {2500, 1}, {3500, 3}, {4500, 3}, {6000, 5}} {
		o, err := adm.ListOffsetsAfterMilli(ctx, c.at, topic)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := o.Lookup(topic, 0)
		if got.Err != nil || got.Offset != c.want {
			t.Fatalf("offset after %d ms: %d (%v), want %d", c.at, got.Offset, got.Err, c.want)
		}
	}
	start, err := adm.ListStartOffsets(ctx, topic)
	end, err2 := adm.ListEndOffsets(ctx, topic)
	s, _ := start.Lookup(topic, 0)
	e, _ := end.Lookup(topic, 0)
	if err != nil || err2 != nil || s.Offset != 0 || e.Offset != 5 {
		t.Fatalf("earliest %d latest %d (%v %v)", s.Offset, e.Offset, err, err2)
	}
}

func TestTopicsAndPartitions(t *testing.T) {
	nodes, addrs := kafkaCluster(t, nil)
	cl := newClient(t, addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	ctx := testCtx(t)
	ms := "3600000"
	createTopic(t, adm, "multi", 3, map[string]*string{"retention.ms": &ms})
	if resp, err := adm.CreateTopic(ctx, 1, -1, nil, "multi"); err == nil && resp.Err == nil {
		t.Fatal("creating an existing topic succeeded")
	}
	td, err := adm.ListTopics(ctx, "multi")
	if err != nil || len(td["multi"].Partitions) != 3 {
		t.Fatalf("metadata: %+v %v", td, err)
	}
	for _, p := range td["multi"].Partitions {
		if p.Leader < 1 || len(p.Replicas) == 0 || p.Err != nil {
			t.Fatalf("partition %+v", p)
		}
	}
	var want []*kgo.Record
	for i := range 30 {
		want = append(want, &kgo.Record{Topic: "multi", Partition: int32(i % 3), Value: []byte(fmt.Sprint(i)), Timestamp: time.UnixMilli(int64(i + 1))})
	}
	produceAll(t, cl, want)
	got := consume(t, addrs, "multi", 30)
	for p := range int32(3) {
		var off int64
		for _, r := range got {
			if r.Partition == p {
				if r.Offset != off || string(r.Value) != fmt.Sprint(int64(p)+3*off) {
					t.Fatalf("partition %d offset %d: %q", p, r.Offset, r.Value)
				}
				off++
			}
		}
		if off != 10 {
			t.Fatalf("partition %d: %d records", p, off)
		}
	}
	// Partition 2 is the Walrus log "multi#2": the text protocol reads it.
	c := nodetest.Dial(t, nodes[2])
	if f, err := c.Fetch(ctx, "multi#2", 0, 100); err != nil || len(f.Entries) != 10 || f.Entries[0].Payload != "2" {
		t.Fatalf("FETCH multi#2: %+v %v", f, err)
	}
	// The text protocol cannot create a partition log's name.
	if err := c.Register(ctx, "other#1"); err == nil {
		t.Fatal("REGISTER other#1 succeeded")
	}
	if _, err := adm.CreatePartitions(ctx, 2, "multi"); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 10*time.Second, "5 partitions", func() bool {
		td, err := adm.ListTopics(ctx, "multi")
		return err == nil && len(td["multi"].Partitions) == 5
	})
	rc, err := adm.DescribeTopicConfigs(ctx, "multi")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rc.On("multi", nil)
	if err != nil || !slices.ContainsFunc(cfg.Configs, func(c kadm.Config) bool { return c.Key == "retention.ms" && c.MaybeValue() == ms }) {
		t.Fatalf("configs: %+v %v", cfg, err)
	}
	if _, err := adm.DeleteTopics(ctx, "multi"); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 10*time.Second, "topic deleted", func() bool {
		for _, n := range nodes {
			for p := range 5 {
				name := "multi"
				if p > 0 {
					name += fmt.Sprintf("#%d", p)
				}
				if _, ok := n.Metadata().Route(name); ok {
					return false
				}
			}
		}
		return true
	})
}

func TestAcrossRollovers(t *testing.T) {
	_, addrs := kafkaCluster(t, func(c *node.Config) { c.MaxSegmentEntries = 50 })
	cl := newClient(t, addrs, kgo.ProducerLinger(0), kgo.MaxBufferedRecords(20))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, "rolling", 1, nil)
	want := sampleRecords("rolling", 400)
	for i := 0; i < len(want); i += 20 {
		produceAll(t, cl, want[i:i+20])
	}
	got := consume(t, addrs, "rolling", len(want))
	for i := range want {
		if got[i].Offset != int64(i) {
			t.Fatalf("record %d has offset %d", i, got[i].Offset)
		}
		sameRecord(t, got[i], want[i])
	}
}
