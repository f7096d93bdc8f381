package tests

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

type stressResult struct {
	written  int
	perTopic map[string]int
}

// stress runs clients writers spread over topics and over every node, and
// at the same time two readers per topic draining through other nodes.
// Writers stop after perClient entries, or at deadline when perClient is 0.
// It checks that every acknowledged entry is read exactly once and that
// each reader sees each writer's entries in order.
func stress(t *testing.T, c *testcluster.Cluster, clients, topics, perClient int, deadline time.Duration) stressResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline+2*time.Minute)
	defer cancel()
	topicName := func(i int) string { return fmt.Sprintf("stress-%d", i%topics) }
	ids := c.IDs()
	setup := c.Conn(ids[0])
	for i := range topics {
		mustOK(t, setup, "REGISTER "+topicName(i))
	}
	// Followers apply the registration a moment later; readers start on
	// other nodes, so wait until every node knows every topic.
	testcluster.Eventually(t, 10*time.Second, func() error {
		for _, id := range ids {
			for i := range topics {
				if _, err := c.State(id, topicName(i)); err != nil {
					return err
				}
			}
		}
		return nil
	})

	var (
		wg        sync.WaitGroup
		errMu     sync.Mutex
		errs      []error
		acked     = make([]atomic.Int64, topics) // acknowledged PUTs per topic
		readCount = make([]atomic.Int64, topics) // GET hits per topic
		writing   atomic.Int64
		stopAt    = time.Now().Add(deadline)
	)
	fail := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
		cancel()
	}
	writing.Store(int64(clients))
	for w := range clients {
		wg.Go(func() {
			defer writing.Add(-1)
			node := c.Node(ids[w%len(ids)])
			conn, err := testcluster.Dial(ctx, node.ClientAddr)
			if err != nil {
				fail(err)
				return
			}
			defer conn.Close()
			topic := topicName(w)
			for i := 0; perClient == 0 || i < perClient; i++ {
				if ctx.Err() != nil || (perClient == 0 && time.Now().After(stopAt)) {
					return
				}
				r, err := conn.Do(fmt.Sprintf("PUT %s w%02d-%06d", topic, w, i))
				if err != nil || r != "OK" {
					fail(fmt.Errorf("writer %d on node %d, entry %d: %q, %v", w, node.ID, i, r, err))
					return
				}
				acked[w%topics].Add(1)
			}
		})
	}

	type delivery struct{ reader, payload string }
	var (
		readMu sync.Mutex
		reads  []delivery
	)
	for r := range 2 * topics {
		wg.Go(func() {
			node := c.Node(ids[(r+1)%len(ids)])
			conn, err := testcluster.Dial(ctx, node.ClientAddr)
			if err != nil {
				fail(err)
				return
			}
			defer conn.Close()
			topic := topicName(r)
			name := fmt.Sprintf("reader%d@node%d", r, node.ID)
			idle := time.NewTicker(10 * time.Millisecond)
			defer idle.Stop()
			for ctx.Err() == nil {
				resp, err := conn.Do("GET " + topic)
				switch {
				case err != nil:
					fail(fmt.Errorf("%s: %v", name, err))
					return
				case strings.HasPrefix(resp, "OK "):
					readMu.Lock()
					reads = append(reads, delivery{name, resp[3:]})
					readMu.Unlock()
					readCount[r%topics].Add(1)
				case resp == "EMPTY":
					if writing.Load() == 0 {
						// Writers are done; EMPTY now means drained, but
						// the other reader may still be mid-GET: stop only
						// when this topic's acknowledged count is reached.
						if readCount[r%topics].Load() >= acked[r%topics].Load() {
							return
						}
					}
					<-idle.C
				default:
					fail(fmt.Errorf("%s GET %s: %q", name, topic, resp))
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}

	// Exactly once, and in per-writer order within each reader.
	seen := map[string]int{}
	last := map[string]int{} // reader/writer -> last seq
	for _, d := range reads {
		seen[d.payload]++
		w, s := parsePayload(t, d.payload)
		k := d.reader + "/" + w
		if prev, ok := last[k]; ok && s <= prev {
			t.Fatalf("%s got %s after seq %d: out of order", d.reader, d.payload, prev)
		}
		last[k] = s
	}
	res := stressResult{perTopic: map[string]int{}}
	for i := range topics {
		res.written += int(acked[i].Load())
		res.perTopic[topicName(i)] = int(acked[i].Load())
	}
	for p, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", p, n)
		}
	}
	if len(seen) != res.written {
		t.Fatalf("read %d distinct entries, %d were acknowledged", len(seen), res.written)
	}
	return res
}

func parsePayload(t *testing.T, p string) (writer string, seq int) {
	t.Helper()
	w, s, ok := strings.Cut(p, "-")
	n, err := strconv.Atoi(s)
	if !ok || err != nil {
		t.Fatalf("unexpected payload %q", p)
	}
	return w, n
}

// stress: 16 concurrent writers x 4 topics through every node, readers
// draining at the same time; every entry read back once; with small
// segments, leadership of the topics spreads over all nodes.
func TestStress(t *testing.T) {
	skipShort(t)
	c := startRollCluster(t)
	const clients, topics, perClient = 16, 4, 60
	res := stress(t, c, clients, topics, perClient, 0)
	if res.written != clients*perClient {
		t.Fatalf("wrote %d, want %d", res.written, clients*perClient)
	}
	leaders := map[uint64]int{}
	testcluster.Eventually(t, 20*time.Second, func() error {
		clear(leaders)
		for i := range topics {
			st, err := c.State(1, fmt.Sprintf("stress-%d", i))
			if err != nil {
				return err
			}
			for _, l := range st.SegmentLeaders {
				leaders[l]++
			}
		}
		if len(leaders) != len(c.Nodes) {
			return fmt.Errorf("segments per leader node %v: want every node to lead some", leaders)
		}
		return nil
	})
	t.Logf("segments per leader node: %v", leaders)
}

// TestSoak is the long version of TestStress (go test ./tests -soak).
func TestSoak(t *testing.T) {
	skipShort(t)
	if !*soak {
		t.Skip("long run; enable with -soak (and -soak.duration)")
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, MaxSegmentEntries: 1000, MonitorInterval: 200 * time.Millisecond})
	start := time.Now()
	res := stress(t, c, 16, 4, 0, *soakDuration)
	el := time.Since(start)
	t.Logf("soak: %d entries written and read back once in %v (%.0f/s)", res.written, el, float64(res.written)/el.Seconds())
}
