package tests

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// Per-topic cost bounds of TestTopicCost (issue 17). Disk: a topic's first
// segment file is one 4 KiB page (measured 4.3 KiB per replica with its
// directory, 2026-12-05); 32 KiB catches a return to the 64 KiB first
// files, or anything preallocating per topic. The RSS bound is 2.2-3x what
// this test measured on the 2-core dev machine (2026-12-04, five runs with
// 2000 or 3000 topics, load average 8-24 from other work): 53-74 KiB per
// topic on every node right after the burst (38 KiB at low load on
// 2026-12-05), most of it writer and replicator state that retires after
// 10 s idle and Go heap not yet returned; 160 KiB catches a return to the
// ~110 KiB+ per topic the issue was filed with, or a new per-topic buffer,
// while GC timing cannot make it flake. 2000 topics keep the test
// under a minute on 2 busy cores (creation, writes, replication, the walk
// of 6000 segment files, the stop, and the removal of the files).
const (
	costTopics              = 2000
	maxDiskPerTopicReplica  = 32 << 10
	maxRSSGrowthPerTopic    = 160 << 10
	topicCostPipelineWindow = 500
)

// TestTopicCost creates 2000 topics on a 3-node cluster with default
// settings, writes one small entry to each and reads it back, and checks
// what each topic costs: data-directory blocks per topic per replica, and
// every node's RSS growth per topic.
func TestTopicCost(t *testing.T) {
	skipShort(t)
	began := time.Now()
	c := testcluster.Start(t, testcluster.Options{HTTP: true})
	ids := c.IDs()
	leader := c.Leader()
	rssBefore := map[uint64]float64{}
	diskBefore := map[uint64]int64{}
	for _, id := range ids {
		rssBefore[id] = scrapeGauge(t, c.Node(id), "process_resident_memory_bytes")
		diskBefore[id] = sizeOf(t, c.Node(id).DataDir).allocated
	}

	conn := testcluster.MustDial(t, leader.ClientAddr)
	conn.SetTimeout(30 * time.Second)
	name := func(i int) string { return "cost-" + strconv.Itoa(i) }
	payload := func(i int) string { return "entry-of-" + name(i) }
	pipelined(t, conn, "REGISTER", func(i int) string { return "REGISTER " + name(i) }, func(i int, r string) bool { return r == "OK" })
	pipelined(t, conn, "PUT", func(i int) string { return "PUT " + name(i) + " " + payload(i) }, func(i int, r string) bool { return r == "OK" })
	pipelined(t, conn, "GET", func(i int) string { return "GET " + name(i) }, func(i int, r string) bool { return r == "OK "+payload(i) })

	st, err := c.State(leader.ID, name(0))
	if err != nil {
		t.Fatal(err)
	}
	rf := st.ReplicationFactor
	if rf < 1 || rf > len(ids) {
		t.Fatalf("replication factor %d", rf)
	}
	// Every replica has its segment file on disk (followers get the entry
	// asynchronously after the acknowledging quorum).
	replicas := map[uint64]int{}
	testcluster.Eventually(t, 30*time.Second, func() error {
		total := 0
		for _, id := range ids {
			replicas[id] = replicaDirs(t, c.Node(id), "cost-")
			total += replicas[id]
		}
		if total < costTopics*rf {
			return fmt.Errorf("%d of %d replicas have their files: %v", total, costTopics*rf, replicas)
		}
		return nil
	})

	for _, id := range ids {
		n := c.Node(id)
		disk := sizeOf(t, n.DataDir).allocated - diskBefore[id]
		perReplica := float64(disk) / float64(replicas[id])
		rss := scrapeGauge(t, n, "process_resident_memory_bytes")
		growth := (rss - rssBefore[id]) / costTopics
		t.Logf("node %d (leader %v): data dir +%.1f MiB = %.1f KiB per topic replica (%d replicas); RSS %.0f -> %.0f MiB = %.1f KiB per topic",
			id, id == leader.ID, float64(disk)/(1<<20), perReplica/1024, replicas[id], rssBefore[id]/(1<<20), rss/(1<<20), growth/1024)
		if perReplica > maxDiskPerTopicReplica {
			t.Errorf("node %d: %.1f KiB of disk per topic replica, want <= %d KiB", id, perReplica/1024, maxDiskPerTopicReplica>>10)
		}
		if growth > maxRSSGrowthPerTopic {
			t.Errorf("node %d: RSS grew %.1f KiB per topic, want <= %d KiB", id, growth/1024, maxRSSGrowthPerTopic>>10)
		}
	}
	stopping := time.Now()
	c.StopAll() // here rather than in cleanup, to log how long it takes
	t.Logf("checks done %v after the start; the nodes stopped (SIGTERM, in parallel) in %v",
		stopping.Sub(began).Round(time.Millisecond), time.Since(stopping).Round(time.Millisecond))
}

// pipelined sends req(i) for every topic i, keeping at most
// topicCostPipelineWindow requests in flight. An ERR reply (a Raft
// election on a loaded machine: this test is about cost, not
// availability) is retried alone until it succeeds or a minute passes;
// any other reply ok rejects fails the test.
func pipelined(t *testing.T, c *testcluster.Conn, what string, req func(int) string, ok func(int, string) bool) {
	t.Helper()
	start := time.Now()
	sent, recvd := 0, 0
	var failed []int
	for recvd < costTopics {
		for sent < costTopics && sent-recvd < topicCostPipelineWindow {
			if err := c.Send(req(sent)); err != nil {
				t.Fatalf("%s %d: %v", what, sent, err)
			}
			sent++
		}
		r, err := c.Recv()
		if err != nil {
			t.Fatalf("%s %d: %v", what, recvd, err)
		}
		switch {
		case ok(recvd, r):
		case strings.HasPrefix(r, "ERR "):
			failed = append(failed, recvd)
		default:
			t.Fatalf("%s %d: %q", what, recvd, abbrev(r))
		}
		recvd++
	}
	for _, i := range failed {
		var last string
		err := testcluster.Poll(time.Minute, func() error {
			r, err := c.Do(req(i))
			if err != nil {
				return err
			}
			if last = r; !ok(i, r) {
				return fmt.Errorf("%q", abbrev(r))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s %d, retried: %v (last %q)", what, i, err, abbrev(last))
		}
	}
	t.Logf("%s: %d topics in %v (%d retried after ERR)", what, costTopics, time.Since(start).Round(time.Millisecond), len(failed))
}

// replicaDirs counts the topic directories named prefix* on node n that
// hold at least one file.
func replicaDirs(t *testing.T, n *testcluster.Node, prefix string) int {
	t.Helper()
	root := filepath.Join(userData(n), "data_plane", "topics")
	entries, err := os.ReadDir(root)
	if err != nil {
		if os.IsNotExist(err) {
			return 0
		}
		t.Fatal(err)
	}
	count := 0
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		has := false
		_ = filepath.WalkDir(filepath.Join(root, e.Name()), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				has = true
				return filepath.SkipAll
			}
			return nil
		})
		if has {
			count++
		}
	}
	return count
}

// scrapeGauge reads one series (the first of its name) from n's /metrics.
func scrapeGauge(t *testing.T, n *testcluster.Node, name string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTPAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("node %d /metrics: %v", n.ID, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line[strings.LastIndexByte(line, '}')+1:])
		if len(f) == 0 {
			break
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			t.Fatalf("node %d /metrics: %q: %v", n.ID, line, err)
		}
		return v
	}
	t.Fatalf("node %d /metrics: no %s (%v)", n.ID, name, sc.Err())
	return 0
}
