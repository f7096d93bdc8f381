package kafka_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/kafka"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/status"
)

// member is one consumer of a group: it records what it consumed and
// commits each poll before it lets a rebalance happen, so nothing is
// consumed twice across the group's rebalances.
type member struct {
	cl *kgo.Client

	mu       sync.Mutex
	seen     []int
	assigned int // partitions assigned over its life
}

func startMember(t *testing.T, addrs []string, group, topic string) *member {
	t.Helper()
	m := &member{}
	m.cl = newClient(t, addrs,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			m.assigned += len(a[topic])
			m.mu.Unlock()
		}))
	return m
}

// poll consumes once and commits what it got; a failed commit is an
// error of the test unless tolerated.
func (m *member) poll(t *testing.T, ctx context.Context) {
	if err := m.pollCommit(t, ctx); err != nil {
		t.Errorf("commit: %v", err)
	}
}

func (m *member) pollCommit(t *testing.T, ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	fs := m.cl.PollFetches(pctx)
	defer m.cl.AllowRebalance()
	var got []int
	fs.EachRecord(func(r *kgo.Record) {
		n, err := strconv.Atoi(string(r.Value))
		if err != nil {
			t.Errorf("record value %q", r.Value)
		}
		got = append(got, n)
	})
	if len(got) == 0 {
		return nil
	}
	m.mu.Lock()
	m.seen = append(m.seen, got...)
	m.mu.Unlock()
	return m.cl.CommitUncommittedOffsets(ctx)
}

func (m *member) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.seen)
}

// waitPartitions waits until every node's metadata has the topic's n
// partitions, so a client's first Metadata sees them all wherever it asks.
func waitPartitions(t *testing.T, nodes []*nodetest.Node, topic string, n int32) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for _, nd := range nodes {
		fsm := nd.Metadata()
		for p := int32(0); p < n; {
			changed := fsm.Changed()
			if _, ok := fsm.Route(kafka.LogName(topic, p)); ok {
				p++
				continue
			}
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("node %d: partition %d of %s not in its metadata", nd.ID(), p, topic)
			}
		}
	}
}

func produceNumbered(t *testing.T, cl *kgo.Client, topic string, parts, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % parts), Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// groupFixture starts a cluster with a three-partition topic holding the
// first half of total numbered records, and returns an admin client and
// the producer (which picks partitions by record).
func groupFixture(t *testing.T, topic string, total int) ([]*nodetest.Node, []string, *kadm.Client, *kgo.Client) {
	t.Helper()
	nodes, addrs := kafkaCluster(t, nil)
	adm := kadm.NewClient(newClient(t, addrs))
	createTopic(t, adm, topic, 3, nil)
	waitPartitions(t, nodes, topic, 3)
	prod := newClient(t, addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceNumbered(t, prod, topic, 3, 0, total/2)
	return nodes, addrs, adm, prod
}

// TestConsumerGroupRebalance: three members of a group share a topic's
// partitions; when one leaves, the other two take its partitions over;
// every record is consumed and committed exactly once, and the group's
// offsets are the Walrus group's (GROUPS shows it with no lag).
func TestConsumerGroupRebalance(t *testing.T) {
	const topic, group, total = "grouped", "g1", 3000
	nodes, addrs, adm, prod := groupFixture(t, topic, total)

	ctx := testCtx(t)
	members := []*member{startMember(t, addrs, group, topic), startMember(t, addrs, group, topic), startMember(t, addrs, group, topic)}
	sum := func(ms []*member) int {
		n := 0
		for _, m := range ms {
			n += m.count()
		}
		return n
	}
	pollAll := func(ms []*member, until func() bool) {
		t.Helper()
		for !until() {
			if ctx.Err() != nil {
				t.Fatalf("timed out: consumed %d of %d", sum(members), total)
			}
			var wg sync.WaitGroup
			for _, m := range ms {
				wg.Go(func() { m.poll(t, ctx) })
			}
			wg.Wait()
		}
	}
	// Every member gets one partition once the group settled.
	pollAll(members, func() bool {
		for _, m := range members {
			m.mu.Lock()
			a := m.assigned
			m.mu.Unlock()
			if a != 1 {
				return false
			}
		}
		return sum(members) == total/2
	})

	// The third member leaves; the other two take its partition over.
	leaver := members[2]
	leaver.cl.Close()
	produceNumbered(t, prod, topic, 3, total/2, total)
	rest := members[:2]
	pollAll(rest, func() bool { return sum(members) == total })
	took := 0
	for _, m := range rest {
		m.mu.Lock()
		took += m.assigned
		m.mu.Unlock()
	}
	if took < 3 {
		t.Fatalf("after a member left, the others were assigned %d partitions in all, want the 3 between them", took)
	}

	counts := make([]int, total)
	for _, m := range members {
		for _, n := range m.seen {
			if n < 0 || n >= total {
				t.Fatalf("unknown record %d", n)
			}
			counts[n]++
		}
	}
	for n, c := range counts {
		if c != 1 {
			t.Fatalf("record %d consumed %d times", n, c)
		}
	}

	// Committed offsets are the end of every partition, seen both by
	// Kafka's OffsetFetch and by the Walrus protocol's GROUPS.
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil || e.Offset != total/3 {
			t.Errorf("partition %d: end %d %v, want %d", e.Partition, e.Offset, e.Err, total/3)
		}
		o, ok := offs.Lookup(topic, e.Partition)
		if !ok || o.At != e.Offset {
			t.Errorf("partition %d: committed %+v, end %d", e.Partition, o, e.Offset)
		}
	})
	c, err := client.Dial(ctx, nodes[0].ClientAddr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for p := range int32(3) {
		gs, err := c.Groups(ctx, kafka.LogName(topic, p))
		if err != nil || len(gs) != 1 || gs[0].Group != group || gs[0].Lag != 0 || gs[0].Offset != ends[topic][p].Offset {
			t.Fatalf("GROUPS %s: %+v %v", kafka.LogName(topic, p), gs, err)
		}
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil || described[group].State != "Stable" || len(described[group].Members) != 2 {
		t.Fatalf("DescribeGroups: %+v %v", described, err)
	}
	if lag, err := adm.Lag(ctx, group); err != nil || lag[group].Lag.Total() != 0 {
		t.Fatalf("lag %v %v", lag, err)
	}
}

// TestGroupAdmin: offsets committed without members (kadm), listed by
// ListGroups and the Walrus protocol's GROUPS, deleted per partition and
// then with the whole group, on every node's view.
func TestGroupAdmin(t *testing.T) {
	nodes, addrs := kafkaCluster(t, nil)
	cl := newClient(t, addrs)
	adm := kadm.NewClient(cl)
	ctx := testCtx(t)
	createTopic(t, adm, "adm", 2, nil)
	waitPartitions(t, nodes, "adm", 2)
	produceNumbered(t, newClient(t, addrs, kgo.RecordPartitioner(kgo.ManualPartitioner())), "adm", 2, 0, 6)
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "adm", Partition: 0, At: 2})
	os.Add(kadm.Offset{Topic: "adm", Partition: 1, At: 1})
	if r, err := adm.CommitOffsets(ctx, "ag", os); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil || !slices.Contains(listed.Groups(), "ag") {
		t.Fatalf("ListGroups: %v %v", listed.Groups(), err)
	}
	c, err := client.Dial(ctx, nodes[1].ClientAddr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	groups := func(topic string) []status.Group {
		gs, err := c.Groups(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		return gs
	}
	if gs := groups("adm#1"); len(gs) != 1 || gs[0].Offset != 1 {
		t.Fatalf("GROUPS adm#1: %+v", gs)
	}
	if r, err := adm.DeleteOffsets(ctx, "ag", kadm.TopicsSet{"adm": {1: {}}}); err != nil || r.Error() != nil {
		t.Fatalf("DeleteOffsets: %v %v", err, r.Error())
	}
	if gs := groups("adm#1"); len(gs) != 0 {
		t.Fatalf("GROUPS adm#1 after OffsetDelete: %+v", gs)
	}
	if gs := groups("adm"); len(gs) != 1 || gs[0].Offset != 2 {
		t.Fatalf("GROUPS adm after OffsetDelete of partition 1: %+v", gs)
	}
	if r, err := adm.DeleteGroup(ctx, "ag"); err != nil || r.Err != nil {
		t.Fatalf("DeleteGroup: %v %v", err, r.Err)
	}
	if gs := groups(""); len(gs) != 0 {
		t.Fatalf("GROUPS after DeleteGroup: %+v", gs)
	}
	if offs, err := adm.FetchOffsets(ctx, "ag"); err != nil || len(offs) != 0 {
		t.Fatalf("offsets after DeleteGroup: %+v %v", offs, err)
	}
}

// TestConsumerGroupCoordinatorFailover: the group coordinator (the Raft
// leader) is killed while two members consume; they find the new one,
// rejoin, and every record is consumed (at least once: what was read but
// not yet committed at the crash comes again) and finally committed.
func TestConsumerGroupCoordinatorFailover(t *testing.T) {
	const topic, group, total = "cofail", "gf", 1800
	nodes, addrs, adm, prod := groupFixture(t, topic, total)

	ctx := testCtx(t)
	members := []*member{startMember(t, addrs, group, topic), startMember(t, addrs, group, topic)}
	distinct := func() int {
		seen := map[int]bool{}
		for _, m := range members {
			m.mu.Lock()
			for _, n := range m.seen {
				seen[n] = true
			}
			m.mu.Unlock()
		}
		return len(seen)
	}
	pollUntil := func(want int) {
		t.Helper()
		for distinct() < want {
			if ctx.Err() != nil {
				t.Fatalf("timed out: consumed %d distinct of %d", distinct(), want)
			}
			var wg sync.WaitGroup
			for _, m := range members {
				wg.Go(func() { _ = m.pollCommit(t, ctx) }) // commits may fail while the coordinator moves
			}
			wg.Wait()
		}
	}
	pollUntil(total / 2)
	var coord *nodetest.Node
	for _, n := range nodes {
		if n.IsRaftLeader() {
			coord = n
		}
	}
	if coord == nil {
		t.Fatal("no Raft leader")
	}
	coord.Crash(t)
	produceNumbered(t, prod, topic, 3, total/2, total)
	pollUntil(total)

	// Offsets reach the end of every partition once the members commit on
	// the new coordinator.
	for {
		var wg sync.WaitGroup
		for _, m := range members {
			wg.Go(func() { _ = m.pollCommit(t, ctx) })
		}
		wg.Wait()
		if ctx.Err() != nil {
			t.Fatal("committed offsets did not reach the end")
		}
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			continue
		}
		done := 0
		for p := range int32(3) {
			if o, ok := offs.Lookup(topic, p); ok && o.At == total/3 {
				done++
			}
		}
		if done == 3 {
			return
		}
		for _, m := range members {
			_ = m.cl.CommitUncommittedOffsets(ctx)
		}
	}
}
