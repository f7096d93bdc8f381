package tests

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/status"
)

// fetchWatcher FETCHes a topic's tail in a loop, remembering every entry
// it was given, and re-reads a window behind the tail each time to see
// whether anything it was given changed. It reads through the first node
// nodes() names and moves to the next one after a connection failure.
type fetchWatcher struct {
	mu      sync.Mutex
	seen    map[uint64]status.Entry
	next    uint64
	errs    int
	lastErr string
	bad     []string // entries that changed or disappeared under the watcher
	stop    chan struct{}
	done    chan struct{}
}

func startFetchWatcher(c *testcluster.Cluster, nodes func() []uint64, topic string) *fetchWatcher {
	w := &fetchWatcher{seen: map[uint64]status.Entry{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var l *logConn
		defer func() {
			if l != nil {
				l.close()
			}
		}()
		pace := time.NewTicker(10 * time.Millisecond)
		defer pace.Stop()
		pick := 0
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			if l == nil {
				ids := nodes()
				id := ids[pick%len(ids)]
				l = &logConn{id: id, addr: c.Node(id).ClientAddr, timeout: 20 * time.Second}
			}
			w.mu.Lock()
			next := w.next
			w.mu.Unlock()
			page, nx, err := fetchPage(l, topic, next, 50)
			if err == nil && page == nil {
				<-pace.C
				continue
			}
			if err == nil {
				w.record(page)
				w.mu.Lock()
				w.next = nx
				w.mu.Unlock()
				// Read back a window behind the tail.
				from := nx - min(nx, 40)
				var back []status.Entry
				back, _, err = fetchPage(l, topic, from, 40)
				if err == nil && back == nil {
					err = fmt.Errorf("node %d: FETCH %s %d: EMPTY below the %d entries already fetched", l.id, topic, from, nx)
				}
				if err == nil {
					w.record(back)
				}
			}
			if err != nil {
				w.mu.Lock()
				w.errs++
				w.lastErr = err.Error()
				if strings.Contains(err.Error(), "out of range") || strings.Contains(err.Error(), "EMPTY below") {
					w.bad = append(w.bad, fmt.Sprintf("after fetching up to %d: %v", next, err))
				}
				w.mu.Unlock()
				if !strings.Contains(err.Error(), `"ERR `) && !strings.Contains(err.Error(), "EMPTY below") {
					l.close() // a connection failure: try the next node
					l = nil
					pick++
				}
				<-pace.C
			}
		}
	}()
	return w
}

func (w *fetchWatcher) record(es []status.Entry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range es {
		if old, ok := w.seen[e.Offset]; ok && old != e {
			w.bad = append(w.bad, fmt.Sprintf("offset %d was %+v, now %+v", e.Offset, old, e))
			continue
		}
		w.seen[e.Offset] = e
	}
}

func (w *fetchWatcher) position() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

func (w *fetchWatcher) halt() { close(w.stop); <-w.done }

// TestLogFetchSegmentLeaderKill: FETCH only ever hands out entries the
// cluster keeps. Two writers PUT and a watcher FETCHes the tail through
// nodes other than the open segment's leader, which is SIGKILLed (round
// 1: a node that is not the Raft leader), restarted once writes resume,
// and then the new open segment's leader is killed too (round 2). After
// recovery, a full FETCH through every node holds every entry the watcher
// was ever given at the same offset with the same payload and time, every
// acknowledged PUT once and in writer order, and nothing no writer sent.
func TestLogFetchSegmentLeaderKill(t *testing.T) {
	skipShort(t)
	c := startReplCluster(t, nil)
	raftLeader := c.Leader().ID
	topic := ""
	for i := 0; topic == "" && i < 20; i++ {
		name := fmt.Sprintf("tail-%d", i)
		mustOK(t, c.Conn(raftLeader), "REGISTER "+name)
		if segmentLeader(t, c, raftLeader, name) != raftLeader {
			topic = name
		}
	}
	if topic == "" {
		t.Fatal("the Raft leader leads every new topic")
	}
	var (
		victimMu sync.Mutex
		victim   = segmentLeader(t, c, raftLeader, topic)
	)
	// Clients use the running nodes except the next victim.
	nodes := func() []uint64 {
		victimMu.Lock()
		defer victimMu.Unlock()
		return others(c.RunningIDs(), victim)
	}
	logs, stopWriters := loadGen(t, c, topic, "f", 2, nodes)
	watcher := startFetchWatcher(c, nodes, topic)
	stopped := false
	defer func() {
		if !stopped {
			stopWriters()
			watcher.halt()
		}
	}()
	for round := 1; round <= 2; round++ {
		from := watcher.position()
		testcluster.Eventually(t, 20*time.Second, func() error {
			if p := watcher.position(); p < from+100 {
				return fmt.Errorf("watcher at %d", p)
			}
			return nil
		})
		victimMu.Lock()
		v := victim
		victimMu.Unlock()
		at := watcher.position()
		before := []int{logs[0].ackCount(), logs[1].ackCount()}
		c.Kill(v)
		killed := time.Now()
		testcluster.Eventually(t, 30*time.Second, func() error {
			for i, l := range logs {
				if l.ackCount() < before[i]+50 {
					return fmt.Errorf("writer %d not resumed", i)
				}
			}
			return nil
		})
		t.Logf("round %d: segment leader %d killed with the watcher at offset %d; writes resumed after %v", round, v, at, time.Since(killed))
		c.Restart(v)
		c.WaitReady()
		if round == 1 {
			l, err := c.RaftLeader()
			if err != nil {
				t.Fatal(err)
			}
			next := segmentLeader(t, c, l, topic)
			victimMu.Lock()
			victim = next
			victimMu.Unlock()
		}
	}
	stopWriters()
	l := dialLog(t, c, others(c.IDs(), victim)[0])
	testcluster.Eventually(t, 30*time.Second, func() error {
		o := offsetsOf(l, topic)
		if p := watcher.position(); p != o.Latest {
			return fmt.Errorf("watcher at %d of %d", p, o.Latest)
		}
		return nil
	})
	watcher.halt()
	stopped = true

	final := fetchAll(t, l, topic, 0, 500)
	checkTail(t, final, watcher, logs)
	t.Logf("%d entries; watcher saw %d (%d FETCH errors, last %q)", len(final), len(watcher.seen), watcher.errs, watcher.lastErr)
	for _, id := range c.IDs() {
		if again := fetchAll(t, dialLog(t, c, id), topic, 0, 500); !slices.Equal(again, final) {
			t.Errorf("FETCH through node %d: %d entries differing from node %d's %d", id, len(again), l.id, len(final))
		}
	}
}

// checkTail checks the final log against what the watcher was given and
// what the writers were told.
func checkTail(t *testing.T, final []status.Entry, w *fetchWatcher, logs []*writerLog) {
	t.Helper()
	for _, b := range w.bad {
		t.Errorf("watcher: %s", b)
	}
	for off, e := range w.seen {
		if off >= uint64(len(final)) {
			t.Errorf("offset %d (%q) was FETCHed but the log now ends at %d", off, e.Payload, len(final))
			continue
		}
		if final[off] != e {
			t.Errorf("offset %d was FETCHed as %+v, the final log has %+v", off, e, final[off])
		}
	}
	at := map[string]uint64{}
	for _, e := range final {
		if prev, ok := at[e.Payload]; ok {
			t.Errorf("payload %q at offsets %d and %d", e.Payload, prev, e.Offset)
		}
		at[e.Payload] = e.Offset
		var k, s int
		if _, err := fmt.Sscanf(e.Payload, "fw%d-%d", &k, &s); err != nil || k < 0 || k >= len(logs) {
			t.Errorf("offset %d: payload %q is no writer's", e.Offset, e.Payload)
		}
	}
	for k, wl := range logs {
		wl.mu.Lock()
		acked := slices.Clone(wl.acked)
		wl.mu.Unlock()
		prev := int64(-1)
		for _, s := range acked {
			p := fmt.Sprintf("fw%d-%d", k, s)
			off, ok := at[p]
			if !ok {
				t.Errorf("writer %d: acknowledged PUT %q missing from the log", k, p)
				continue
			}
			if int64(off) <= prev {
				t.Errorf("writer %d: acknowledged PUT %q at offset %d, before the previous acknowledged one at %d", k, p, off, prev)
			}
			prev = int64(off)
		}
	}
}
