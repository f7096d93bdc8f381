package tests

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// TestNemesis is a Jepsen-style test (issue 11): writers and a reader run
// against a 3-node cluster (rf 3, ack 2, failure_timeout_ms 1000, Raft and
// internal RPC through the fault proxies) while a nemesis applies, at
// random, SIGKILL + restart, SIGSTOP/SIGCONT, wipe-and-restart (rejoin with
// an empty data dir) and network isolation to one node at a time (the
// Raft leader, the segment leader or another), for 0.5x to 3x the failure
// timeout, overlapping on that node. A node counts as faulty until it is
// a voter again and, after a wipe, until its replicas have caught up.
// Then everything is read back and checked: every acknowledged PUT read
// (less GET replies lost with a broken connection, at their position),
// nothing never written, per-writer order, duplicates only with a Raft
// leader change (the cursor's redelivery window), and a PUT acknowledged
// within WritableWithin of every fault's end.
//
// It runs for 60 s in every `go test ./tests/` (skipped with -short or
// WALRUS_NEMESIS=0); WALRUS_NEMESIS_SECONDS=600 soaks, WALRUS_NEMESIS_SEED=<n>
// replays a schedule (the same sequence of choices; which node holds a
// role then depends on the cluster), WALRUS_NEMESIS_FAULTS=kill,pause,
// wipe,partition picks the kinds.
func TestNemesis(t *testing.T) {
	skipShort(t)
	cfg, run := nemesisEnv(t)
	if !run {
		t.Skip("WALRUS_NEMESIS=0: nemesis skipped")
	}
	t.Logf("nemesis seed %d, %v, faults %v, failure timeout %v; replay: %s", cfg.Seed, cfg.Duration, cfg.Kinds, cfg.FailureTimout, cfg.replay())

	p := testcluster.NewPartition(t, 3)
	c := testcluster.Start(t, testcluster.Options{
		Nodes: 3,
		Extra: map[string]any{
			"failure_timeout_ms":  cfg.FailureTimout.Milliseconds(),
			"max_segment_entries": 5000,
			"monitor_check_ms":    200,
		},
		NodeExtra: p.NodeExtra,
	})
	const topic = "nemesis"
	mustOK(t, c.Conn(c.Leader().ID), "CREATE "+topic+" rf=3 ack=2")

	writers, stopWriters := startNemWriters(c, topic, 4)
	t.Cleanup(stopWriters)
	reader := startNemReader(c, topic)
	t.Cleanup(reader.stop)

	nem := newNemesis(t, c, p, topic, cfg)
	scheduleLogged := false
	t.Cleanup(func() {
		if t.Failed() {
			if !scheduleLogged {
				t.Logf("nemesis seed %d schedule:\n%s\nreplay: %s", cfg.Seed, scheduleText(nem), cfg.replay())
			}
			saveArtifacts(t, c, cfg, nem)
		}
	})
	nem.run()

	// Writable after the final heal: every writer gets an acknowledgement.
	var problems []string
	healed := time.Now()
	if err := testcluster.Poll(cfg.WritableWithin+20*time.Second, func() error {
		for k, w := range writers {
			if w.lastAck().Before(healed) {
				return fmt.Errorf("writer %d has no acknowledged PUT since the final heal", k)
			}
		}
		return nil
	}); err != nil {
		problems = append(problems, fmt.Sprintf("not writable after the final heal: %v", err))
	}
	stopWriters()
	reader.stop()
	problems = append(problems, nem.problems...)

	h := reader.history()
	drained, drainErr := drainPipelined(c, topic, &h)
	if drainErr != nil {
		problems = append(problems, drainErr.Error())
	}

	ws := make([]writerHistory, len(writers))
	unknown := 0
	for k, w := range writers {
		ws[k] = w.history()
		unknown += len(w.unknown)
	}
	res := checkReads("n", ws, h)

	// Write availability after each fault.
	var maxUnavail time.Duration
	for _, f := range nem.schedule {
		if f.End.IsZero() {
			continue
		}
		next, ok := firstAckAfter(writers, f.End)
		if !ok {
			problems = append(problems, fmt.Sprintf("%v: no PUT acknowledged after it ended", f))
			continue
		}
		d := next.Sub(f.End)
		maxUnavail = max(maxUnavail, d)
		if d > cfg.WritableWithin {
			problems = append(problems, fmt.Sprintf("%v: next acknowledged PUT %v after it ended (bound %v)", f, d.Round(time.Millisecond), cfg.WritableWithin))
		}
	}
	longestGap, gapAt := longestAckGap(writers, nem)

	if len(res.Missing) > 0 {
		problems = append(problems, fmt.Sprintf("%d acknowledged PUTs never read, not explained by a lost GET reply: %s; on disk: %s",
			len(res.Missing), describeEntries(res.Missing, writers, nem), locateOnDisk(c, topic, res.Missing)))
	}
	if res.TooManyMissing {
		problems = append(problems, fmt.Sprintf("%d acknowledged PUTs never read but only %d GET replies lost", len(res.Missing)+len(res.Consumed), len(h.LostAt)))
	}
	if len(res.Phantoms) > 0 {
		problems = append(problems, fmt.Sprintf("%d entries read that no writer sent: %v", len(res.Phantoms), firstN(res.Phantoms, 20)))
	}
	if len(res.OrderViolations) > 0 {
		problems = append(problems, fmt.Sprintf("%d per-writer order violations: %v", len(res.OrderViolations), firstN(res.OrderViolations, 20)))
	}
	if res.Dups > 0 && nem.termChanges == 0 {
		problems = append(problems, fmt.Sprintf("%d entries read twice without any Raft leader change (README allows redelivery only after the Raft leader crashes or loses leadership)", res.Dups))
	}
	if len(res.Consumed) > 0 {
		t.Logf("%d acknowledged entries consumed by GETs whose replies were lost with a broken connection: %s", len(res.Consumed), describeEntries(res.Consumed, writers, nem))
	}

	byKind := map[faultKind]int{}
	overlapping := 0
	for _, f := range nem.schedule {
		byKind[f.Kind]++
		if f.Role == "same node, overlapping" {
			overlapping++
		}
	}
	var kinds []string
	for _, k := range allFaultKinds {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, byKind[k]))
	}
	summary := fmt.Sprintf("nemesis seed %d, %v: faults %s (%d, %d overlapping); PUTs acknowledged %d (outcome unknown %d); read %d (%d distinct, %d in the final drain), duplicates %d, consumed by lost GET replies %d (%d replies lost); Raft term changes %d; max unavailability after a fault %v (bound %v); longest gap between acknowledgements %v (at %s)",
		cfg.Seed, cfg.Duration, strings.Join(kinds, " "), len(nem.schedule), overlapping, res.Acked, unknown, res.Read, res.Distinct, drained, res.Dups, len(res.Consumed), len(h.LostAt), nem.termChanges,
		maxUnavail.Round(time.Millisecond), cfg.WritableWithin, longestGap.Round(time.Millisecond), gapAt)
	t.Logf("nemesis seed %d schedule (times from the start of the nemesis):\n%s", cfg.Seed, scheduleText(nem))
	scheduleLogged = true
	t.Log(summary)
	if len(problems) > 0 {
		if id, err := c.RaftLeader(); err == nil {
			if st, err := c.State(id, topic); err == nil {
				t.Logf("STATE %s on the Raft leader (node %d) at the end: %+v", topic, id, st)
			}
		}
		t.Errorf("%s\n\nnemesis found %d problem(s):\n- %s\n\nreplay: %s", summary, len(problems), strings.Join(problems, "\n- "), cfg.replay())
	}
}

func firstN[T any](s []T, n int) []T { return s[:min(n, len(s))] }

// nemWriter PUTs "nw<k>-<seq>" with one request in flight and records the
// outcome of each.
type nemWriter struct {
	mu       sync.Mutex
	acked    []int
	ackedAt  []time.Time
	ackedVia []uint64 // the node the writer was connected to
	unknown  map[int]bool
}

func (w *nemWriter) lastAck() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ackedAt) == 0 {
		return time.Time{}
	}
	return w.ackedAt[len(w.ackedAt)-1]
}

func (w *nemWriter) history() writerHistory {
	w.mu.Lock()
	defer w.mu.Unlock()
	sent := maps.Clone(w.unknown)
	for _, s := range w.acked {
		sent[s] = true
	}
	return writerHistory{Acked: slices.Clone(w.acked), Sent: func(s int) bool { return sent[s] }}
}

// ackTime is when writer k's PUT seq was acknowledged, and through which
// node (zero if it was not).
func (w *nemWriter) ackTime(seq int) (time.Time, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i, ok := slices.BinarySearch(w.acked, seq); ok {
		return w.ackedAt[i], w.ackedVia[i]
	}
	return time.Time{}, 0
}

// startNemWriters starts n writers, writer k first through node k%3+1 and
// on to the next node after a transport error (a 20 s request deadline
// covers pauses). The returned stop may be called more than once.
func startNemWriters(c *testcluster.Cluster, topic string, n int) ([]*nemWriter, func()) {
	ws := make([]*nemWriter, n)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for k := range n {
		ws[k] = &nemWriter{unknown: map[int]bool{}}
		wg.Go(func() {
			w := ws[k]
			var conn *testcluster.Conn
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			pick := k
			var via uint64
			for seq := 0; ; seq++ {
				select {
				case <-done:
					return
				default:
				}
				if conn == nil {
					id := c.Nodes[pick%len(c.Nodes)].ID
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					cn, err := testcluster.Dial(ctx, c.Node(id).ClientAddr)
					cancel()
					if err != nil {
						pick++
						seq--
						time.Sleep(20 * time.Millisecond) // back off from a node that is down
						continue
					}
					cn.SetTimeout(20 * time.Second)
					conn, via = cn, id
				}
				r, err := conn.Do(fmt.Sprintf("PUT %s nw%d-%d", topic, k, seq))
				now := time.Now()
				w.mu.Lock()
				if err == nil && r == "OK" {
					w.acked = append(w.acked, seq)
					w.ackedAt = append(w.ackedAt, now)
					w.ackedVia = append(w.ackedVia, via)
				} else {
					w.unknown[seq] = true
				}
				w.mu.Unlock()
				if err != nil {
					conn.Close()
					conn = nil
					pick++
				} else if r != "OK" {
					time.Sleep(10 * time.Millisecond) // ERR during a failover: do not spin
				}
			}
		})
	}
	var once sync.Once
	return ws, func() { once.Do(func() { close(done); wg.Wait() }) }
}

// nemReader GETs in a loop through the nodes in turn, moving on after a
// transport error, which may have consumed an entry (GET is destructive).
type nemReader struct {
	mu     sync.Mutex
	h      readHistory
	errs   int
	done   chan struct{}
	exited chan struct{}
	once   sync.Once
}

func startNemReader(c *testcluster.Cluster, topic string) *nemReader {
	r := &nemReader{done: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(r.exited)
		var conn *testcluster.Conn
		defer func() {
			if conn != nil {
				conn.Close()
			}
		}()
		pick := 0
		for {
			select {
			case <-r.done:
				return
			default:
			}
			if conn == nil {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				cn, err := testcluster.Dial(ctx, c.Nodes[pick%len(c.Nodes)].ClientAddr)
				cancel()
				pick++
				if err != nil {
					time.Sleep(20 * time.Millisecond) // back off from a node that is down
					continue
				}
				cn.SetTimeout(20 * time.Second)
				conn = cn
			}
			reply, err := conn.Do("GET " + topic)
			r.mu.Lock()
			switch {
			case err != nil:
				conn.Close()
				conn = nil
				r.h.LostAt = append(r.h.LostAt, len(r.h.Reads))
			case strings.HasPrefix(reply, "OK "):
				r.h.Reads = append(r.h.Reads, reply[3:])
			case strings.HasPrefix(reply, "ERR"):
				r.errs++
			}
			r.mu.Unlock()
			if err == nil && !strings.HasPrefix(reply, "OK ") {
				time.Sleep(5 * time.Millisecond) // EMPTY or ERR: do not spin
			}
		}
	}()
	return r
}

func (r *nemReader) stop() {
	r.once.Do(func() { close(r.done) })
	<-r.exited
}

func (r *nemReader) history() readHistory {
	r.mu.Lock()
	defer r.mu.Unlock()
	return readHistory{Reads: slices.Clone(r.h.Reads), LostAt: slices.Clone(r.h.LostAt)}
}

// drainPipelined reads what is left of topic through the Raft leader,
// 64 GETs in flight, until a batch answers EMPTY with no ERR; it appends
// to h (a broken connection counts its unanswered GETs as lost replies).
// It gives up after two minutes.
func drainPipelined(c *testcluster.Cluster, topic string, h *readHistory) (int, error) {
	const batch = 64
	deadline := time.Now().Add(2 * time.Minute)
	n := 0
	var conn *testcluster.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	lastErr := ""
	for time.Now().Before(deadline) {
		if conn == nil {
			id, err := c.RaftLeader()
			if err != nil {
				id = 1
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			cn, err := testcluster.Dial(ctx, c.Node(id).ClientAddr)
			cancel()
			if err != nil {
				time.Sleep(100 * time.Millisecond) // the cluster should be whole by now; retry within the deadline
				continue
			}
			cn.SetTimeout(20 * time.Second)
			conn = cn
		}
		sent := 0
		for range batch {
			if conn.Send("GET "+topic) != nil {
				break
			}
			sent++
		}
		empty, errs := false, 0
		for i := range sent {
			r, err := conn.Recv()
			if err != nil {
				for range sent - i {
					h.LostAt = append(h.LostAt, len(h.Reads))
				}
				conn.Close()
				conn = nil
				break
			}
			switch {
			case strings.HasPrefix(r, "OK "):
				h.Reads = append(h.Reads, r[3:])
				n++
			case r == "EMPTY":
				empty = true
			default:
				errs++
				lastErr = r
			}
		}
		if conn != nil && empty && errs == 0 {
			return n, nil
		}
		if errs > 0 {
			time.Sleep(100 * time.Millisecond) // the topic answers ERR: give it time, within the deadline
		}
	}
	return n, fmt.Errorf("final drain: topic not EMPTY without errors within 2 min after %d entries (last ERR %q)", n, lastErr)
}

// firstAckAfter is the earliest acknowledgement by any writer after x.
func firstAckAfter(ws []*nemWriter, x time.Time) (time.Time, bool) {
	var best time.Time
	for _, w := range ws {
		w.mu.Lock()
		i, _ := slices.BinarySearchFunc(w.ackedAt, x, func(a, b time.Time) int { return a.Compare(b) })
		for i < len(w.ackedAt) && !w.ackedAt[i].After(x) {
			i++
		}
		if i < len(w.ackedAt) && (best.IsZero() || w.ackedAt[i].Before(best)) {
			best = w.ackedAt[i]
		}
		w.mu.Unlock()
	}
	return best, !best.IsZero()
}

// longestAckGap is the longest stretch with no acknowledgement by any
// writer, and when it started (in the nemesis's time, with the faults
// active then).
func longestAckGap(ws []*nemWriter, n *nemesis) (time.Duration, string) {
	var all []time.Time
	for _, w := range ws {
		w.mu.Lock()
		all = append(all, w.ackedAt...)
		w.mu.Unlock()
	}
	slices.SortFunc(all, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	at := "-"
	for i := 1; i < len(all); i++ {
		if d := all[i].Sub(all[i-1]); d > gap {
			gap = d
			at = fmt.Sprintf("%.3fs, during %s", all[i-1].Sub(n.start).Seconds(), faultAt(n.schedule, all[i-1]))
		}
	}
	return gap, at
}

// describeEntries groups entries into runs of one writer's consecutive
// acknowledged PUTs, each with when it was acknowledged and the faults
// active then, e.g. "nw2 seq 1510..1602 (93; acked 12.301s..14.120s during
// #4 pause node 2)". It lists at most 30 runs.
func describeEntries(es []entryRef, ws []*nemWriter, n *nemesis) string {
	byWriter := map[int][]int{}
	for _, e := range es {
		byWriter[e.Writer] = append(byWriter[e.Writer], e.Seq)
	}
	var runs []string
	for _, k := range slices.Sorted(maps.Keys(byWriter)) {
		seqs := byWriter[k]
		slices.Sort(seqs)
		w := ws[k]
		w.mu.Lock()
		acked := slices.Clone(w.acked)
		w.mu.Unlock()
		// Runs are consecutive in the writer's acknowledged order.
		pos := func(s int) int { i, _ := slices.BinarySearch(acked, s); return i }
		for i := 0; i < len(seqs); {
			j := i
			for j+1 < len(seqs) && pos(seqs[j+1]) == pos(seqs[j])+1 {
				j++
			}
			a, via := w.ackTime(seqs[i])
			b, _ := w.ackTime(seqs[j])
			runs = append(runs, fmt.Sprintf("nw%d seq %d..%d (%d; acked %.3fs..%.3fs (%s) via node %d, during %s)",
				k, seqs[i], seqs[j], j-i+1, a.Sub(n.start).Seconds(), b.Sub(n.start).Seconds(), a.UTC().Format("15:04:05.000"), via, faultAt(n.schedule, a)))
			i = j + 1
		}
	}
	out := strings.Join(firstN(runs, 30), "; ")
	if len(runs) > 30 {
		out += fmt.Sprintf("; and %d more runs", len(runs)-30)
	}
	return out
}
