package kafka_test

import (
	"context"
	"encoding/binary"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/kafka/kbatch"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/record"
)

// idemBatch is a record batch of n records from producer id/epoch
// starting at sequence seq.
func idemBatch(id int64, epoch int16, seq int32, n int, tag string) []byte {
	var es []kbatch.Entry
	for i := range n {
		es = append(es, kbatch.Entry{Off: uint64(i), K: record.Keyed{Timestamp: 7, Value: []byte(tag + "-" + strconv.Itoa(i))}})
	}
	b := kbatch.Encode(nil, es)
	binary.BigEndian.PutUint64(b[43:], uint64(id))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	return recrc(b)
}

// rawProduce sends one partition's batch to addr and answers its code
// and base offset.
func rawProduce(t *testing.T, addr, topic string, batch []byte) (int16, int64) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 10000
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic = topic
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = batch
	tp.Partitions = append(tp.Partitions, p)
	req.Topics = append(req.Topics, tp)
	resp := kmsg.NewPtrProduceResponse()
	roundTrip(t, dialRaw(t, addr), req, resp)
	rp := resp.Topics[0].Partitions[0]
	return rp.ErrorCode, rp.BaseOffset
}

// leaderAddr is the Kafka address of the partition's segment leader as
// nodes[0] sees it; "" while that leader is not one of nodes.
func leaderAddr(t *testing.T, nodes []*nodetest.Node, log string) string {
	t.Helper()
	r, ok := nodes[0].Metadata().Route(log)
	if !ok {
		t.Fatalf("no route for %s", log)
	}
	for _, n := range nodes {
		if n.ID() == r.Leader {
			return n.KafkaAddr()
		}
	}
	return ""
}

// TestIdempotentRetriedBatch: a batch sent twice is stored once and both
// answers carry the same offset; that holds after the partition rolled
// over to segments led by other nodes; a sequence gap, an old epoch and
// an unknown producer get Kafka's errors; ids are unique.
func TestIdempotentRetriedBatch(t *testing.T) {
	nodes, addrs := kafkaCluster(t, func(c *node.Config) { c.MaxSegmentEntries = 8 })
	adm := kadm.NewClient(newClient(t, addrs))
	createTopic(t, adm, "idem", 1, nil)
	waitPartitions(t, nodes, "idem", 1)

	ids := map[int64]bool{}
	var id int64
	for i := range 3 {
		id = initProducerID(t, addrs[i])
		if ids[id] {
			t.Fatalf("producer id %d handed out twice", id)
		}
		ids[id] = true
	}

	send := func(seq int32, n int, tag string) (int16, int64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, base := rawProduce(t, leaderAddr(t, nodes, "idem"), "idem", idemBatch(id, 0, seq, n, tag))
			if code != kerr.NotLeaderForPartition.Code || time.Now().After(deadline) {
				return code, base
			}
			waitChanged(t, nodes[0])
		}
	}
	code, first := send(0, 5, "a")
	if code != 0 || first != 0 {
		t.Fatalf("first batch: code %d base %d", code, first)
	}
	if code, again := send(0, 5, "a"); code != 0 || again != first {
		t.Fatalf("retried batch: code %d base %d, want %d", code, again, first)
	}
	if code, _ := send(7, 1, "gap"); code != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("sequence gap: code %d", code)
	}
	// Fill the partition past several rollovers (8 entries a segment).
	seq := int32(5)
	for range 6 {
		if code, _ := send(seq, 4, "fill"+strconv.Itoa(int(seq))); code != 0 {
			t.Fatalf("batch at %d: code %d", seq, code)
		}
		seq += 4
	}
	if st, _ := nodes[0].Metadata().Route("idem"); st.Segment < 3 {
		t.Fatalf("the partition did not roll over (segment %d)", st.Segment)
	}
	// The new segments' leaders rebuilt the producer state from the log:
	// the last batch again is a duplicate with its offset, the first one
	// is too old to have an offset but is not stored again.
	if code, again := send(seq-4, 4, "fill"+strconv.Itoa(int(seq-4))); code != 0 || again != int64(seq-4) {
		t.Fatalf("last batch retried after rollovers: code %d base %d, want %d", code, again, seq-4)
	}
	if code, base := send(0, 5, "a"); (code != 0 || base != 0) && code != kerr.DuplicateSequenceNumber.Code {
		t.Fatalf("first batch retried after rollovers: code %d base %d", code, base)
	}
	if code, _ := send(seq, 1, "unknown"); code != 0 {
		t.Fatalf("next batch: %d", code)
	}
	if code, _ := rawProduce(t, leaderAddr(t, nodes, "idem"), "idem", idemBatch(424242, 0, 3, 1, "x")); code != kerr.UnknownProducerID.Code {
		t.Fatalf("unknown producer: code %d", code)
	}
	// A node other than the leader may see the open segment's count a
	// heartbeat late: wait for the end to reach what was stored.
	want := int64(seq) + 1
	deadline := time.Now().Add(10 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(testCtx(t), "idem")
		o, _ := ends.Lookup("idem", 0)
		if err == nil && o.Offset == want {
			break
		}
		if o.Offset > want || time.Now().After(deadline) {
			t.Fatalf("end offset %d %v, want %d (nothing stored twice)", o.Offset, err, want)
		}
		waitChanged(t, nodes[0])
	}
}

// initProducerID asks addr for a new producer id.
func initProducerID(t *testing.T, addr string) int64 {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp := kmsg.NewPtrInitProducerIDResponse()
	roundTrip(t, dialRaw(t, addr), req, resp)
	if resp.ErrorCode != 0 || resp.ProducerID <= 0 || resp.ProducerEpoch != 0 {
		t.Fatalf("InitProducerId on %s: %+v", addr, resp)
	}
	return resp.ProducerID
}

func waitChanged(t *testing.T, n *nodetest.Node) {
	t.Helper()
	select {
	case <-n.Metadata().Changed():
	case <-time.After(100 * time.Millisecond):
	}
}

// TestIdempotentProducerAcrossLeaderCrash: franz-go's idempotent producer
// (the default) writes numbered records with acks=all while the
// partition's segment leader crashes; afterwards every number is in the
// partition exactly once, in order.
func TestIdempotentProducerAcrossLeaderCrash(t *testing.T) {
	nodes, addrs := kafkaCluster(t, nil)
	adm := kadm.NewClient(newClient(t, addrs))
	createTopic(t, adm, "idemcrash", 1, nil)
	waitPartitions(t, nodes, "idemcrash", 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic("idemcrash"), kgo.RetryTimeout(60*time.Second), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// A batch acknowledged by the leader that is about to crash; it is sent
	// again at the end, to whichever node leads then.
	rawID := initProducerID(t, addrs[0])
	raw := idemBatch(rawID, 0, 0, 3, "raw")
	if code, base := rawProduce(t, leaderAddr(t, nodes, "idemcrash"), "idemcrash", raw); code != 0 || base != 0 {
		t.Fatalf("raw batch: code %d base %d", code, base)
	}

	const total = 4000
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failed  []error
		acked   int
		half    = make(chan struct{})
		crashed uint64
	)
	for i := range total {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, err)
				return
			}
			acked++
			if acked == total/4 {
				close(half)
			}
		})
		if i == total/4 {
			<-half // crash with batches in flight
			r, _ := nodes[0].Metadata().Route("idemcrash")
			for _, n := range nodes {
				if n.ID() == r.Leader {
					crashed = n.ID()
					n.Crash(t)
				}
			}
		}
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d records failed, first: %v", len(failed), failed[0])
	}
	var live []string
	for _, n := range nodes {
		if n.ID() != crashed {
			live = append(live, n.KafkaAddr())
		}
	}
	// The new segment leader rebuilt the producers from the log: the raw
	// batch the crashed leader acknowledged is not stored again.
	var liveNodes []*nodetest.Node
	for _, n := range nodes {
		if n.ID() != crashed {
			liveNodes = append(liveNodes, n)
		}
	}
	for {
		addr := leaderAddr(t, liveNodes, "idemcrash")
		if addr == "" {
			waitChanged(t, liveNodes[0])
			continue
		}
		code, base := rawProduce(t, addr, "idemcrash", raw)
		if code == 0 && base == 0 {
			break
		}
		if code != kerr.NotLeaderForPartition.Code || ctx.Err() != nil {
			t.Fatalf("raw batch sent again after the crash: code %d base %d, want a duplicate at 0", code, base)
		}
		waitChanged(t, liveNodes[0])
	}
	got := consume(t, live, "idemcrash", total+3)
	for i, r := range got {
		want := strconv.Itoa(i - 3)
		if i < 3 {
			want = "raw-" + strconv.Itoa(i)
		}
		if string(r.Value) != want {
			t.Fatalf("offset %d holds %q, want %q (a duplicate or a gap)", i, r.Value, want)
		}
	}
	ladm := kadm.NewClient(newClient(t, live))
	for {
		ends, err := ladm.ListEndOffsets(ctx, "idemcrash")
		o, _ := ends.Lookup("idemcrash", 0)
		if err == nil && o.Offset == total+3 {
			return
		}
		if o.Offset > total+3 || ctx.Err() != nil {
			t.Fatalf("end offset %d %v, want %d", o.Offset, err, total+3)
		}
		waitChanged(t, liveNodes[0])
	}
}
