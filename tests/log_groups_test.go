package tests

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/status"
)

// drainGroup READs topic for group through l (pages of max, default ack
// wait) and ACKs every page, until EMPTY. It returns the entries in
// delivery order.
func drainGroup(l *logConn, group, topic string, max, limit int) ([]status.Entry, error) {
	var got []status.Entry
	for range limit {
		es, err := readGroup(l, group, topic, max, 0)
		if err != nil {
			return got, err
		}
		if es == nil {
			return got, nil
		}
		got = append(got, es...)
		if r, err := l.send(ackLine(group, topic, es)); err != nil || r != "OK" {
			return got, fmt.Errorf("node %d: ACK of %d entries from %d: %q, %v", l.id, len(es), es[0].Offset, r, err)
		}
	}
	return got, fmt.Errorf("node %d: READ %s %s: not EMPTY after %d READs", l.id, group, topic, limit)
}

// two_groups: two groups read one topic (300 entries over several
// segments) at the same time through different nodes; each gets every
// entry exactly once, in order, with deliveries 1, and ends committed at
// the end with lag 0. A new entry then reaches both.
func testLogTwoGroups(t *testing.T, c *testcluster.Cluster) {
	const (
		topic = "twogroups"
		n     = 300
	)
	putPayloads(t, dialLog(t, c, 2), topic, seq("g", 0, n))
	log := fetchAll(t, dialLog(t, c, 3), topic, 0, 1000)
	if len(log) != n {
		t.Fatalf("FETCH: %d entries, want %d", len(log), n)
	}
	groups := []string{"alpha", "beta"}
	via := []uint64{c.Leader().ID, c.Follower().ID}
	got := make([][]status.Entry, len(groups))
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		l := dialLog(t, c, via[i])
		wg.Go(func() { got[i], errs[i] = drainGroup(l, g, topic, 7+10*i, 1000) })
	}
	wg.Wait()
	for i, g := range groups {
		if errs[i] != nil {
			t.Fatalf("group %s: %v", g, errs[i])
		}
		if len(got[i]) != n {
			t.Fatalf("group %s: %d entries, want %d", g, len(got[i]), n)
		}
		for j, e := range got[i] {
			want := log[j]
			want.Deliveries = 1
			if e != want {
				t.Fatalf("group %s: delivery %d is %+v, want %+v", g, j, e, want)
			}
		}
	}
	l := dialLog(t, c, 3)
	for _, g := range groups {
		if cm := committedOf(l, g, topic); cm.Offset != n || cm.Lag != 0 {
			t.Errorf("COMMITTED %s %s = %+v, want offset %d lag 0", g, topic, cm, n)
		}
	}
	var list []status.Group
	l.json("GROUPS "+topic, &list)
	want := []status.Group{{Group: "alpha", Topic: topic, Offset: n}, {Group: "beta", Topic: topic, Offset: n}}
	if !slices.Equal(list, want) {
		t.Errorf("GROUPS %s = %+v, want %+v", topic, list, want)
	}
	var all []status.Group
	l.json("GROUPS", &all)
	for _, w := range want {
		if !slices.Contains(all, w) {
			t.Errorf("GROUPS (all topics) = %+v, lacks %+v", all, w)
		}
	}
	l.ok("PUT " + topic + " g-late")
	for i, g := range groups {
		es, err := readGroup(dialLog(t, c, via[1-i]), g, topic, 10, 0)
		if err != nil || len(es) != 1 || es[0].Offset != n || es[0].Payload != "g-late" || es[0].Deliveries != 1 {
			t.Errorf("group %s after one more PUT: %+v, %v; want offset %d g-late", g, es, err, n)
		}
	}
}

// shared_group: three consumers of one group, on three nodes, share 400
// entries. Two (ack wait 10 s) READ and ACK until every entry is acked;
// the third acks two pages, then READs one page with a 500 ms ack wait
// and walks away. Its leases expire and the survivors get those entries
// again (deliveries 2). Every offset is acked exactly once across all
// ACKs, none is lost, and only the abandoned ones are delivered twice.
func testLogSharedGroup(t *testing.T, c *testcluster.Cluster) {
	const (
		topic = "shared"
		group = "workers"
		n     = 400
	)
	putPayloads(t, dialLog(t, c, 1), topic, seq("s", 0, n))
	log := fetchAll(t, dialLog(t, c, 2), topic, 0, 1000)
	if len(log) != n {
		t.Fatalf("FETCH: %d entries, want %d", len(log), n)
	}

	var (
		mu       sync.Mutex
		ackedBy  = map[uint64]int{} // offset -> how many ACKs named it
		ackCount int
	)
	recordAcks := func(es []status.Entry) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range es {
			if ackedBy[e.Offset] == 0 {
				ackCount++
			}
			ackedBy[e.Offset]++
		}
	}
	allAcked := func() bool { mu.Lock(); defer mu.Unlock(); return ackCount >= n }

	cons := make([]*consumer, 3)
	for i := range cons {
		cons[i] = &consumer{}
	}
	quitter := cons[2]
	started := make(chan struct{})
	deadline := time.Now().Add(45 * time.Second)
	var wg sync.WaitGroup
	// The quitter on node 3.
	lq := dialLog(t, c, 3)
	wg.Go(func() {
		defer close(started)
		for round := range 3 {
			wait := 10000
			if round == 2 {
				wait = 500
			}
			es, err := readGroup(lq, group, topic, 10, wait)
			if err == nil && es == nil {
				err = fmt.Errorf("READ round %d: EMPTY with %d entries unread", round, n)
			}
			if err != nil {
				quitter.err = err
				return
			}
			quitter.deliveries = append(quitter.deliveries, es...)
			if round == 2 {
				quitter.abandoned = es
				return
			}
			if r, err := lq.send(ackLine(group, topic, es)); err != nil || r != "OK" {
				quitter.err = fmt.Errorf("ACK: %q, %v", r, err)
				return
			}
			recordAcks(es)
			for _, e := range es {
				quitter.acked = append(quitter.acked, e.Offset)
			}
			if round == 0 {
				started <- struct{}{} // the survivors start while the quitter goes on
			}
		}
	})
	<-started
	for i, id := range []uint64{1, 2} {
		cn := cons[i]
		l := dialLog(t, c, id)
		wg.Go(func() {
			pace := time.NewTicker(20 * time.Millisecond)
			defer pace.Stop()
			for !allAcked() {
				if time.Now().After(deadline) {
					mu.Lock()
					cn.err = fmt.Errorf("node %d: %d of %d offsets acked after 45 s", id, ackCount, n)
					mu.Unlock()
					return
				}
				es, err := readGroup(l, group, topic, 10, 10000)
				if err != nil {
					cn.err = err
					return
				}
				if es == nil {
					<-pace.C // nothing leased to us now; wait for expired leases
					continue
				}
				cn.deliveries = append(cn.deliveries, es...)
				if r, err := l.send(ackLine(group, topic, es)); err != nil || r != "OK" {
					cn.err = fmt.Errorf("node %d: ACK: %q, %v", id, r, err)
					return
				}
				recordAcks(es)
				for _, e := range es {
					cn.acked = append(cn.acked, e.Offset)
				}
			}
		})
	}
	wg.Wait()
	for i, cn := range cons {
		if cn.err != nil {
			t.Fatalf("consumer %d: %v", i, cn.err)
		}
	}
	if len(quitter.abandoned) == 0 {
		t.Fatal("the quitter abandoned nothing")
	}
	abandoned := map[uint64]bool{}
	for _, e := range quitter.abandoned {
		abandoned[e.Offset] = true
	}
	for off := range uint64(n) {
		if k := ackedBy[off]; k != 1 {
			t.Errorf("offset %d acked %d times across the consumers, want exactly once", off, k)
		}
	}
	counts := map[uint64][]uint32{} // offset -> the deliveries of each time it was delivered
	redelivered := 0
	for i, cn := range cons {
		for _, e := range cn.deliveries {
			want := log[e.Offset]
			if e.Payload != want.Payload || e.TimestampMs != want.TimestampMs {
				t.Errorf("consumer %d: offset %d delivered as %+v, FETCH has %+v", i, e.Offset, e, want)
			}
			counts[e.Offset] = append(counts[e.Offset], e.Deliveries)
			if e.Deliveries > 1 {
				redelivered++
				if !abandoned[e.Offset] {
					t.Errorf("consumer %d: offset %d delivered %d times but it was never abandoned (its lease was 10 s)", i, e.Offset, e.Deliveries)
				}
			}
		}
	}
	for off := range uint64(n) {
		ds := slices.Sorted(slices.Values(counts[off]))
		for j, d := range ds {
			if d != uint32(j+1) {
				t.Errorf("offset %d delivered with deliveries %v, want 1..%d", off, ds, len(ds))
				break
			}
		}
		if len(ds) == 0 {
			t.Errorf("offset %d never delivered", off)
		}
		if abandoned[off] && len(ds) < 2 {
			t.Errorf("abandoned offset %d delivered %d times: its lease never came back", off, len(ds))
		}
	}
	t.Logf("acks: survivors %d + %d, quitter %d; %d abandoned, %d redeliveries", len(cons[0].acked), len(cons[1].acked), len(quitter.acked), len(abandoned), redelivered)
	l := dialLog(t, c, 2)
	if cm := committedOf(l, group, topic); cm.Offset != n || cm.Lag != 0 {
		t.Errorf("COMMITTED %s %s = %+v, want offset %d lag 0", group, topic, cm, n)
	}
	var list []status.Group
	l.json("GROUPS "+topic, &list)
	if want := []status.Group{{Group: group, Topic: topic, Offset: n}}; !slices.Equal(list, want) {
		t.Errorf("GROUPS %s = %+v, want %+v", topic, list, want)
	}
	if es, err := readGroup(l, group, topic, 10, 0); err != nil || es != nil {
		t.Errorf("READ after everything was acked: %+v, %v; want EMPTY", es, err)
	}
}

// TestLogGroupOffsetsSurviveLeaderKill: committed group offsets (an
// explicit COMMIT as soon as it answered OK, and ACK-moved offsets once
// the commit batch ran) survive
// SIGKILL of the Raft leader, which coordinates the groups, and then a
// SIGKILL of the whole cluster and a restart from disk. READ after either
// starts at the committed offset, never below it.
func TestLogGroupOffsetsSurviveLeaderKill(t *testing.T) {
	skipShort(t)
	c := startReplCluster(t, nil)
	const (
		topic = "durable"
		n     = 200
	)
	leader := c.Leader().ID
	follower := c.Follower().ID
	putPayloads(t, dialLog(t, c, follower), topic, seq("d", 0, n))
	log := fetchAll(t, dialLog(t, c, follower), topic, 0, 1000)
	if len(log) != n {
		t.Fatalf("FETCH: %d entries, want %d", len(log), n)
	}

	// Explicit COMMIT through a follower (relayed), ACKs through the leader.
	lf := dialLog(t, c, follower)
	lf.ok("COMMIT explicit " + topic + " 120")
	if cm := committedOf(lf, "explicit", topic); cm.Offset != 120 || cm.Lag != n-120 {
		t.Fatalf("COMMITTED explicit = %+v, want 120 lag %d", cm, n-120)
	}
	ll := dialLog(t, c, leader)
	es, err := readGroup(ll, "acker", topic, 50, 0)
	if err != nil || len(es) != 50 || es[0].Offset != 0 {
		t.Fatalf("READ acker: %d entries, %v", len(es), err)
	}
	ll.ok(ackLine("acker", topic, es))
	// Leased and never acked: 50..69, redelivered after the leader change.
	if es, err := readGroup(ll, "acker", topic, 20, 0); err != nil || len(es) != 20 || es[0].Offset != 50 {
		t.Fatalf("READ acker 20: %+v, %v", es, err)
	}
	if cm := committedOf(ll, "acker", topic); cm.Offset != 50 {
		t.Fatalf("COMMITTED acker = %+v, want 50", cm)
	}
	waitGroupCommit(t, c)
	// COMMIT answers OK once Raft holds the offset: no wait before the kill.
	ll.ok("COMMIT instant " + topic + " 77")

	c.Kill(leader)
	survivors := others(c.IDs(), leader)
	newLeader := c.WaitLeader(survivors...)
	t.Logf("Raft leader %d killed; node %d leads", leader, newLeader)
	ls := dialLog(t, c, survivors[0])
	var cmExplicit, cmAcker, cmInstant status.Committed
	testcluster.Eventually(t, 20*time.Second, func() error {
		for g, dst := range map[string]*status.Committed{"explicit": &cmExplicit, "acker": &cmAcker, "instant": &cmInstant} {
			r, err := ls.send("COMMITTED " + g + " " + topic)
			if err != nil {
				return err
			}
			if err := decodeStrict(r, dst); err != nil {
				return err
			}
		}
		return nil
	})
	if cmExplicit.Offset != 120 {
		t.Errorf("after killing the Raft leader: COMMITTED explicit = %+v, want 120 (the last COMMIT)", cmExplicit)
	}
	if cmInstant.Offset != 77 {
		t.Errorf("after killing the Raft leader right after COMMIT instant %s 77 answered OK: COMMITTED instant = %+v, want 77", topic, cmInstant)
	}
	if cmAcker.Offset != 50 {
		t.Errorf("after killing the Raft leader: COMMITTED acker = %+v, want 50 (ACKed and batch-committed before the kill)", cmAcker)
	}
	checkReadFrom(t, ls, "acker", topic, uint64(max(cmAcker.Offset, 0)), log, 100)
	checkReadFrom(t, dialLog(t, c, survivors[1]), "explicit", topic, uint64(max(cmExplicit.Offset, 0)), log, 100)

	// Move both on the new leader: ACK 50..79 of the redelivered window,
	// COMMIT explicit to 150; bring the old leader back; wait for the
	// batch; then SIGKILL everything and restart from disk.
	ls.ok(ackLine("acker", topic, log[50:80]))
	ls.ok("COMMIT explicit " + topic + " 150")
	c.Restart(leader)
	c.WaitReady()
	waitGroupCommit(t, c)
	dialLog(t, c, c.Follower().ID).ok("COMMIT instant " + topic + " 99")
	for _, id := range c.IDs() {
		c.Kill(id)
	}
	c.RestartAll()
	l := dialLog(t, c, c.Follower().ID)
	testcluster.Eventually(t, 20*time.Second, func() error {
		for g, dst := range map[string]*status.Committed{"explicit": &cmExplicit, "acker": &cmAcker, "instant": &cmInstant} {
			r, err := l.send("COMMITTED " + g + " " + topic)
			if err != nil {
				return err
			}
			if err := decodeStrict(r, dst); err != nil {
				return err
			}
		}
		return nil
	})
	if cmExplicit.Offset != 150 {
		t.Errorf("after a full-cluster SIGKILL and restart: COMMITTED explicit = %+v, want 150", cmExplicit)
	}
	if cmInstant.Offset != 99 {
		t.Errorf("after a full-cluster SIGKILL right after COMMIT instant %s 99 answered OK: COMMITTED instant = %+v, want 99", topic, cmInstant)
	}
	if cmAcker.Offset != 80 {
		t.Errorf("after a full-cluster SIGKILL and restart: COMMITTED acker = %+v, want 80", cmAcker)
	}
	var list []status.Group
	l.json("GROUPS "+topic, &list)
	t.Logf("GROUPS after the restart: %+v", list)
	checkReadFrom(t, l, "acker", topic, uint64(max(cmAcker.Offset, 0)), log, 1000)
	checkReadFrom(t, l, "explicit", topic, uint64(max(cmExplicit.Offset, 0)), log, 1000)
	if got := fetchAll(t, l, topic, 0, 1000); !slices.Equal(got, log) {
		t.Errorf("FETCH after the restart: %d entries differing from before", len(got))
	}
}

// checkReadFrom READs group on topic once (up to max entries) and checks
// that it starts exactly at from (the committed offset: nothing below it
// comes back, nothing above it is skipped) and matches the log.
func checkReadFrom(t *testing.T, l *logConn, group, topic string, from uint64, log []status.Entry, max int) {
	t.Helper()
	var es []status.Entry
	testcluster.Eventually(t, 20*time.Second, func() error {
		var err error
		es, err = readGroup(l, group, topic, max, 0)
		return err
	})
	if es == nil {
		if from < uint64(len(log)) {
			t.Errorf("READ %s: EMPTY, want entries from %d", group, from)
		}
		return
	}
	for i, e := range es {
		if e.Offset < from {
			t.Errorf("READ %s: offset %d below the committed offset %d", group, e.Offset, from)
			return
		}
		if want := from + uint64(i); e.Offset != want || e.Payload != log[want].Payload {
			t.Errorf("READ %s: entry %d is %+v, want offset %d %q", group, i, e, want, log[want].Payload)
			return
		}
	}
}
