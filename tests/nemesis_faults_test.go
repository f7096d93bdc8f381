package tests

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// The nemesis of TestNemesis: it applies faults at random to one node at a
// time (the cluster tolerates one faulty node of three, README §11), lets
// them overlap on that node (a partition, then a pause, then a kill), and
// considers the node faulty until it is back: every node a voter under one
// Raft leader, and after a wipe until its replicas have caught up.

type faultKind string

const (
	faultKill      faultKind = "kill"      // SIGKILL, down for a while, restart from disk
	faultPause     faultKind = "pause"     // SIGSTOP, SIGCONT later
	faultWipe      faultKind = "wipe"      // SIGKILL, data dir deleted, restart with join
	faultPartition faultKind = "partition" // isolated from the other nodes (clients still reach it)
)

var allFaultKinds = []faultKind{faultKill, faultPause, faultWipe, faultPartition}

// fault is one entry of the schedule.
type fault struct {
	N       int // position in the schedule, from 1
	Kind    faultKind
	Node    uint64
	Role    string        // what the node was when the fault started
	Planned time.Duration // how long the fault lasts
	Start   time.Time
	End     time.Time // when healed (restart, SIGCONT, heal); zero while active
	// Recovered is when the node counted as healthy again (the same for
	// every fault of an episode on one node).
	Recovered time.Time
	Note      string
}

func (f *fault) String() string {
	s := fmt.Sprintf("#%d %s node %d (%s) planned %v", f.N, f.Kind, f.Node, f.Role, f.Planned.Round(time.Millisecond))
	if f.Note != "" {
		s += " [" + f.Note + "]"
	}
	return s
}

// nemesisConfig is what the environment chose.
type nemesisConfig struct {
	Seed          uint64
	Duration      time.Duration
	Kinds         []faultKind
	FailureTimout time.Duration
	// WritableWithin bounds the time from a fault's end to the next
	// acknowledged PUT.
	WritableWithin time.Duration
}

func (cfg nemesisConfig) replay() string {
	var ks []string
	for _, k := range cfg.Kinds {
		ks = append(ks, string(k))
	}
	return fmt.Sprintf("WALRUS_NEMESIS_SEED=%d WALRUS_NEMESIS_SECONDS=%d WALRUS_NEMESIS_FAULTS=%s go test ./tests/ -run 'TestNemesis$' -v",
		cfg.Seed, int(cfg.Duration/time.Second), strings.Join(ks, ","))
}

// nemesisEnv reads WALRUS_NEMESIS, WALRUS_NEMESIS_SECONDS, WALRUS_NEMESIS_SEED
// and WALRUS_NEMESIS_FAULTS; run is false when the test is not asked for.
func nemesisEnv(t *testing.T) (cfg nemesisConfig, run bool) {
	t.Helper()
	cfg = nemesisConfig{Duration: 60 * time.Second, Kinds: allFaultKinds, FailureTimout: time.Second, WritableWithin: 10 * time.Second}
	secs, hasSecs := os.LookupEnv("WALRUS_NEMESIS_SECONDS")
	run = os.Getenv("WALRUS_NEMESIS") != "0" || hasSecs
	if hasSecs {
		v, err := strconv.Atoi(secs)
		if err != nil || v < 5 || v > 24*3600 {
			t.Fatalf("WALRUS_NEMESIS_SECONDS=%q: want whole seconds, 5..86400", secs)
		}
		cfg.Duration = time.Duration(v) * time.Second
	}
	cfg.Seed = rand.Uint64() % 1_000_000_000
	if v := os.Getenv("WALRUS_NEMESIS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("WALRUS_NEMESIS_SEED=%q: want an unsigned integer", v)
		}
		cfg.Seed = s
	}
	if v := os.Getenv("WALRUS_NEMESIS_FAULTS"); v != "" {
		cfg.Kinds = nil
		for _, k := range strings.Split(v, ",") {
			k := faultKind(strings.TrimSpace(k))
			if !slices.Contains(allFaultKinds, k) {
				t.Fatalf("WALRUS_NEMESIS_FAULTS=%q: unknown kind %q (want some of %v)", v, k, allFaultKinds)
			}
			if !slices.Contains(cfg.Kinds, k) {
				cfg.Kinds = append(cfg.Kinds, k)
			}
		}
	}
	return cfg, run
}

// nemesis owns the fault schedule. Only the test goroutine calls it.
type nemesis struct {
	t     *testing.T
	c     *testcluster.Cluster
	p     *testcluster.Partition
	topic string
	cfg   nemesisConfig
	rng   *rand.Rand
	start time.Time

	schedule []*fault
	active   []*fault // faults of the current episode not yet healed
	episode  []*fault // every fault of the current episode
	target   uint64   // the faulty node, 0 when none
	// healedAt is when the episode's last fault ended.
	healedAt time.Time
	// problems are failures found while faults ran (a node that never
	// came back); they stop the nemesis early.
	problems []string

	// Raft terms seen on healthy nodes: a new term means the Raft leader
	// crashed or lost leadership, which opens the cursor's redelivery
	// window (the only source of duplicate reads README §11 allows).
	maxTerm       uint64
	termChanges   int
	lastTermProbe time.Time
	// segments is the number of sealed segments at the last wipe check.
	segments int
}

func newNemesis(t *testing.T, c *testcluster.Cluster, p *testcluster.Partition, topic string, cfg nemesisConfig) *nemesis {
	return &nemesis{t: t, c: c, p: p, topic: topic, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
}

func (n *nemesis) logf(format string, args ...any) {
	n.t.Helper()
	n.t.Logf("nemesis %7.3fs: %s", time.Since(n.start).Seconds(), fmt.Sprintf(format, args...))
}

// ft scales the failure timeout.
func (n *nemesis) ft(x float64) time.Duration {
	return time.Duration(x * float64(n.cfg.FailureTimout))
}

// recoverTimeout bounds how long a node may take to count as healthy after
// its last fault: a wiped node pulls one sealed segment per second.
const recoverTimeout = 90 * time.Second

// run applies faults until the duration has passed (or a problem stops
// it), then heals everything and waits until the cluster has recovered.
func (n *nemesis) run() {
	n.start = time.Now()
	n.logf("started at %s (times below are relative to it)", n.start.UTC().Format("15:04:05.000"))
	deadline := n.start.Add(n.cfg.Duration)
	// A first quiet stretch lets the writers warm up.
	next := time.Now().Add(n.ft(2))
	for time.Now().Before(deadline) && len(n.problems) == 0 {
		now := time.Now()
		n.probeTerm(now)
		for _, f := range slices.Clone(n.active) {
			if now.Sub(f.Start) >= f.Planned {
				n.heal(f)
			}
		}
		if n.target != 0 && len(n.active) == 0 {
			n.checkRecovered()
		}
		if !now.Before(next) && (n.target == 0 || len(n.active) > 0) {
			// Every decision draws the same numbers whatever it decides, so
			// a seed replays the same sequence of choices.
			kind := n.cfg.Kinds[n.rng.IntN(len(n.cfg.Kinds))]
			role := n.rng.IntN(4)
			pick := uint64(n.rng.IntN(len(n.c.Nodes)) + 1)
			dur := n.ft(0.5 + 2.5*n.rng.Float64())
			// A quarter of kills and wipes restart at once, before any
			// failover: the node returns still named the segment leader.
			quick := n.rng.Float64() < 0.25
			if quick && (kind == faultKill || kind == faultWipe) {
				dur = n.ft(0.1 * n.rng.Float64())
			} else {
				_ = n.rng.Float64()
			}
			stack := n.rng.Float64() < 0.5
			gap := n.ft(0.25 + 1.75*n.rng.Float64())
			switch {
			case n.target == 0:
				n.begin(kind, role, pick, dur)
			case stack:
				n.stack(kind, dur)
			}
			next = time.Now().Add(gap)
		}
		time.Sleep(50 * time.Millisecond) // the nemesis's tick: it paces faults, it does not wait for a condition
	}
	if len(n.problems) > 0 {
		n.logf("stopping early: %s", strings.Join(n.problems, "; "))
	}
	for _, f := range slices.Clone(n.active) {
		f.Note = strings.TrimPrefix(f.Note+"; healed early at the end of the run", "; ")
		n.heal(f)
	}
	for n.target != 0 && len(n.problems) == 0 {
		n.probeTerm(time.Now())
		n.checkRecovered()
		time.Sleep(50 * time.Millisecond) // polling the recovery check, bounded by recoverTimeout
	}
	n.c.ResumeAll()
	n.p.Heal()
}

// probeTerm records the Raft term of a healthy node every 250 ms.
func (n *nemesis) probeTerm(now time.Time) {
	if now.Sub(n.lastTermProbe) < 250*time.Millisecond {
		return
	}
	n.lastTermProbe = now
	for _, id := range n.c.RunningIDs() {
		if id == n.target || n.c.Paused(id) {
			continue
		}
		m, err := n.c.Metrics(id)
		if err != nil {
			continue
		}
		if m.CurrentTerm > n.maxTerm {
			if n.maxTerm != 0 {
				n.termChanges++
				n.logf("Raft term %d -> %d (seen on node %d, leader %v)", n.maxTerm, m.CurrentTerm, id, derefOr(m.CurrentLeader))
			}
			n.maxTerm = m.CurrentTerm
		}
		return
	}
}

func derefOr(p *uint64) any {
	if p == nil {
		return "none"
	}
	return *p
}

// begin starts a new episode on a node picked by role: 0 the Raft leader,
// 1 the open segment's leader, 2 a node that is neither, 3 any node.
func (n *nemesis) begin(kind faultKind, role int, pick uint64, dur time.Duration) {
	raft, errR := n.c.RaftLeader()
	var seg uint64
	var errS error = fmt.Errorf("no Raft leader")
	if errR == nil {
		seg, errS = n.c.SegmentLeader(raft, n.topic)
	}
	target := pick
	switch role {
	case 0:
		if errR == nil {
			target = raft
		}
	case 1:
		if errS == nil && seg != 0 {
			target = seg
		}
	case 2:
		if errR == nil && errS == nil {
			if o := others(n.c.IDs(), raft, seg); len(o) > 0 {
				target = o[int(pick)%len(o)]
			}
		}
	}
	var roles []string
	if errR == nil && target == raft {
		roles = append(roles, "Raft leader")
	}
	if errS == nil && target == seg {
		roles = append(roles, "segment leader")
	}
	if len(roles) == 0 {
		roles = append(roles, "follower")
	}
	if errR != nil || errS != nil {
		roles = append(roles, fmt.Sprintf("roles unknown: %v %v", errR, errS))
	}
	n.target = target
	n.episode = nil
	n.apply(kind, strings.Join(roles, "+"), dur)
}

// stack adds a fault of kind to the faulty node when it is compatible
// with those already active: one partition, one pause, one kill or wipe
// (a kill or wipe ends a pause).
func (n *nemesis) stack(kind faultKind, dur time.Duration) {
	for _, f := range n.active {
		switch {
		case f.Kind == kind,
			kind == faultPause && (f.Kind == faultKill || f.Kind == faultWipe),
			(kind == faultKill || kind == faultWipe) && (f.Kind == faultKill || f.Kind == faultWipe):
			return
		}
	}
	n.apply(kind, "same node, overlapping", dur)
}

func (n *nemesis) apply(kind faultKind, role string, dur time.Duration) {
	f := &fault{N: len(n.schedule) + 1, Kind: kind, Node: n.target, Role: role, Planned: dur, Start: time.Now()}
	id := f.Node
	switch kind {
	case faultKill, faultWipe:
		for _, o := range slices.Clone(n.active) {
			if o.Kind == faultPause {
				o.End = f.Start
				o.Note = fmt.Sprintf("ended by %s #%d", kind, f.N)
				n.active = slices.DeleteFunc(n.active, func(x *fault) bool { return x == o })
			}
		}
		if kind == faultKill {
			n.c.Kill(id)
		} else {
			n.c.WipeData(id)
		}
	case faultPause:
		n.c.Pause(id)
	case faultPartition:
		n.p.Isolate(id)
	}
	n.schedule = append(n.schedule, f)
	n.active = append(n.active, f)
	n.episode = append(n.episode, f)
	n.logf("start %v", f)
}

func (n *nemesis) heal(f *fault) {
	switch f.Kind {
	case faultKill, faultWipe:
		n.c.Restart(f.Node)
	case faultPause:
		n.c.Resume(f.Node)
	case faultPartition:
		n.p.Heal()
	}
	f.End = time.Now()
	n.active = slices.DeleteFunc(n.active, func(x *fault) bool { return x == f })
	if len(n.active) == 0 {
		n.healedAt = f.End
	}
	n.logf("end   #%d %s node %d after %v", f.N, f.Kind, f.Node, f.End.Sub(f.Start).Round(time.Millisecond))
}

// checkRecovered ends the episode once the faulty node is healthy again,
// and records a problem if that takes longer than recoverTimeout.
func (n *nemesis) checkRecovered() {
	err := n.recovered()
	if err == nil {
		now := time.Now()
		for _, f := range n.episode {
			f.Recovered = now
		}
		n.logf("node %d healthy again %v after the episode's last fault ended", n.target, now.Sub(n.healedAt).Round(time.Millisecond))
		n.target = 0
		n.episode = nil
		return
	}
	// A wiped node pulls one sealed segment per second (node/segment
	// catch-up), so allow for the topic's length.
	limit := recoverTimeout + time.Duration(n.segments)*1500*time.Millisecond
	if time.Since(n.healedAt) > limit {
		var fs []string
		for _, f := range n.episode {
			fs = append(fs, f.String())
		}
		n.problems = append(n.problems, fmt.Sprintf("node %d not healthy %v after its faults (%s) ended: %v", n.target, limit, strings.Join(fs, ", "), err))
	}
}

// recovered reports why the faulty node does not count as healthy yet:
// it must be a voter under the one Raft leader all nodes agree on, and
// after a wipe the Raft leader must report no under-replicated segment and
// the node must hold every sealed segment of its replica sets in full
// (read from its own files, see localSealedEntries).
func (n *nemesis) recovered() error {
	leader, err := n.c.Ready()
	if err != nil {
		return err
	}
	var wipe *fault
	for _, f := range n.episode {
		if f.Kind == faultWipe {
			wipe = f
		}
	}
	if wipe == nil {
		return nil
	}
	m, err := n.c.Metrics(leader)
	if err != nil {
		return err
	}
	if m.UnderReplicated != 0 {
		return fmt.Errorf("under_replicated = %d on the Raft leader", m.UnderReplicated)
	}
	st, err := n.c.State(leader, n.topic)
	if err != nil {
		return err
	}
	n.segments = len(st.SealedSegments)
	for key, set := range st.Replicas {
		count, sealed := st.SealedSegments[key]
		if !sealed || count == 0 || !slices.Contains(set, wipe.Node) {
			continue
		}
		seg, _ := strconv.ParseUint(key, 10, 64)
		got, ok, err := localSealedEntries(n.c.Node(wipe.Node), n.topic, seg)
		if err != nil || !ok || got < count {
			return fmt.Errorf("node %d does not hold sealed segment %d in full yet (sealed count %d; its copy: %d entries, sealed %v, %v)", wipe.Node, seg, count, got, ok, err)
		}
	}
	return nil
}

// localSealedEntries reads the seal record of node nd's copy of a segment
// straight from its file (the mmap backend's layout, backends/mmapstore
// README: <data_dir>/node_<id>/user_data/data_plane/topics/<topic>/
// <segment:020d>.seg, seal record at byte 128: magic "SEAL", version,
// entries). No command reports a replica's local count, and "replica
// caught up" is logged only for pulls, not for a segment the leader
// streamed in full.
func localSealedEntries(nd *testcluster.Node, topic string, seg uint64) (entries uint64, sealed bool, err error) {
	path := filepath.Join(nd.DataDir, fmt.Sprintf("node_%d", nd.ID), "user_data", "data_plane", "topics", topic, fmt.Sprintf("%020d.seg", seg))
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	var rec [64]byte
	if _, err := f.ReadAt(rec[:], 128); err != nil {
		return 0, false, err
	}
	if string(rec[0:4]) != "SEAL" {
		return 0, false, nil
	}
	return binary.LittleEndian.Uint64(rec[8:16]), true, nil
}

// faultAt describes the faults active at time x, for annotating entries.
func faultAt(schedule []*fault, x time.Time) string {
	var fs []string
	for _, f := range schedule {
		end := f.End
		if end.IsZero() {
			end = x.Add(time.Nanosecond)
		}
		if !x.Before(f.Start) && x.Before(end) {
			fs = append(fs, fmt.Sprintf("#%d %s node %d", f.N, f.Kind, f.Node))
		} else if !f.End.IsZero() && !x.Before(f.End) && (f.Recovered.IsZero() || x.Before(f.Recovered)) {
			fs = append(fs, fmt.Sprintf("after #%d %s node %d, recovering", f.N, f.Kind, f.Node))
		}
	}
	if len(fs) == 0 {
		return "no fault"
	}
	return strings.Join(fs, ", ")
}
