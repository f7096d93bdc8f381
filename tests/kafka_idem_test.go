package tests

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// TestKafkaIdempotentProducerSIGKILL: three walrus processes with Kafka
// listeners; franz-go's idempotent producer (acks=all) writes numbered
// records while the partition's segment leader gets SIGKILL. Every record
// is acknowledged, and the partition holds each number exactly once, in
// order: no retried batch stored twice, none lost.
func TestKafkaIdempotentProducerSIGKILL(t *testing.T) {
	ports := testcluster.FreePorts(t, 3)
	c := testcluster.Start(t, testcluster.Options{NodeExtra: func(id uint64) map[string]any {
		return map[string]any{"kafka.port": ports[id-1]}
	}})
	var addrs []string
	for _, p := range ports {
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(p))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	newClient := func(addrs []string, opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.RetryTimeout(90 * time.Second),
			kgo.MetadataMinAge(100 * time.Millisecond)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	adm := kadm.NewClient(newClient(addrs))
	if r, err := adm.CreateTopic(ctx, 1, -1, nil, "killed"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	prod := newClient(addrs, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("killed"), kgo.ProducerLinger(time.Millisecond))

	const total = 6000
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failed  []error
		acked   int
		quarter = make(chan struct{})
		killed  uint64
	)
	for i := range total {
		wg.Add(1)
		prod.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, err)
				return
			}
			if acked++; acked == total/4 {
				close(quarter)
			}
		})
		if i == total/3 {
			<-quarter // batches are in flight when the leader dies
			md, err := adm.ListTopics(ctx, "killed")
			if err != nil {
				t.Fatal(err)
			}
			killed = uint64(md["killed"].Partitions[0].Leader)
			c.Kill(killed)
		}
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d records failed, first: %v", len(failed), failed[0])
	}
	var live []string
	for i, a := range addrs {
		if uint64(i+1) != killed {
			live = append(live, a)
		}
	}
	cons := newClient(live, kgo.ConsumeTopics("killed"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []*kgo.Record
	for len(got) < total && ctx.Err() == nil {
		got = append(got, cons.PollFetches(ctx).Records()...)
	}
	for i, r := range got {
		if string(r.Value) != strconv.Itoa(i) {
			t.Fatalf("offset %d holds %q, want %d (a duplicate or a gap; segment leader %d was killed)", i, r.Value, i, killed)
		}
	}
	// Nothing after them either (a node other than the leader may see
	// the open segment's count a heartbeat late, never ahead).
	ladm := kadm.NewClient(newClient(live))
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for ; ; <-tick.C {
		ends, err := ladm.ListEndOffsets(ctx, "killed")
		o, _ := ends.Lookup("killed", 0)
		if err == nil && o.Offset == total {
			return
		}
		if o.Offset > total || ctx.Err() != nil {
			t.Fatalf("end offset %d %v, want %d", o.Offset, err, total)
		}
	}
}
