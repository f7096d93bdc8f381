package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/walrus-go/walrus/engine"
)

func leaderStats() RaftStats {
	return RaftStats{
		State: "Leader", Term: 5, LastLogIndex: 142, AppliedIndex: 141, CommitIndex: 142,
		LeaderID: 1, HasLeader: true, SnapshotIndex: 100, SnapshotTerm: 4,
		SnapshotBytes: 4096, SnapshotPersist: 250 * time.Millisecond, SnapshotRestore: 1500 * time.Millisecond,
		Followers: map[uint64]Follower{
			1: {MatchIndex: 142, NextIndex: 143}, // self: must be skipped
			2: {MatchIndex: 142, NextIndex: 143},
			3: {MatchIndex: 30, NextIndex: 31},
		},
		Voters: []uint64{1, 2, 3}, Learners: []uint64{4},
	}
}

func TestRaftCollectorLeader(t *testing.T) {
	m := New(1)
	m.SetRaftSource(leaderStats)
	want := `
# HELP walrus_raft_applied_index Index of the last entry applied to the state machine (METRICS last_applied).
# TYPE walrus_raft_applied_index gauge
walrus_raft_applied_index{node_id="1"} 141
# HELP walrus_raft_commit_index Index of the last committed entry known to this node.
# TYPE walrus_raft_commit_index gauge
walrus_raft_commit_index{node_id="1"} 142
# HELP walrus_raft_has_leader 1 when this node knows a Raft leader.
# TYPE walrus_raft_has_leader gauge
walrus_raft_has_leader{node_id="1"} 1
# HELP walrus_raft_is_leader 1 when this node is the Raft leader.
# TYPE walrus_raft_is_leader gauge
walrus_raft_is_leader{node_id="1"} 1
# HELP walrus_raft_log_index Last log index: the last entry in this node's Raft log (METRICS last_log_index; name as in the monitoring guide's scraper example).
# TYPE walrus_raft_log_index gauge
walrus_raft_log_index{node_id="1"} 142
# HELP walrus_raft_leader_id Node id of the current Raft leader; 0 when there is none.
# TYPE walrus_raft_leader_id gauge
walrus_raft_leader_id{node_id="1"} 1
# HELP walrus_raft_learners Non-voting members (learners) in the current configuration.
# TYPE walrus_raft_learners gauge
walrus_raft_learners{node_id="1"} 1
# HELP walrus_raft_replication_lag_entries Leader only: last_log_index minus the follower's match_index.
# TYPE walrus_raft_replication_lag_entries gauge
walrus_raft_replication_lag_entries{follower_id="2",node_id="1"} 0
walrus_raft_replication_lag_entries{follower_id="3",node_id="1"} 112
# HELP walrus_raft_replication_match_index Leader only: highest log index known replicated on the follower.
# TYPE walrus_raft_replication_match_index gauge
walrus_raft_replication_match_index{follower_id="2",node_id="1"} 142
walrus_raft_replication_match_index{follower_id="3",node_id="1"} 30
# HELP walrus_raft_snapshot_bytes Size of the latest metadata snapshot: persisted by this node, or the newest on disk at start.
# TYPE walrus_raft_snapshot_bytes gauge
walrus_raft_snapshot_bytes{node_id="1"} 4096
# HELP walrus_raft_snapshot_persist_seconds Time the latest metadata snapshot took to persist (0 until one is taken).
# TYPE walrus_raft_snapshot_persist_seconds gauge
walrus_raft_snapshot_persist_seconds{node_id="1"} 0.25
# HELP walrus_raft_snapshot_restore_seconds Time the latest metadata snapshot restore took (at start-up or installed from the leader; 0 until one happens).
# TYPE walrus_raft_snapshot_restore_seconds gauge
walrus_raft_snapshot_restore_seconds{node_id="1"} 1.5
# HELP walrus_raft_snapshot_index Last log index covered by the latest snapshot.
# TYPE walrus_raft_snapshot_index gauge
walrus_raft_snapshot_index{node_id="1"} 100
# HELP walrus_raft_snapshot_term Term of the latest snapshot.
# TYPE walrus_raft_snapshot_term gauge
walrus_raft_snapshot_term{node_id="1"} 4
# HELP walrus_raft_state 1 for this node's current Raft state, 0 for the others.
# TYPE walrus_raft_state gauge
walrus_raft_state{node_id="1",state="Candidate"} 0
walrus_raft_state{node_id="1",state="Follower"} 0
walrus_raft_state{node_id="1",state="Leader"} 1
walrus_raft_state{node_id="1",state="Shutdown"} 0
# HELP walrus_raft_term Current Raft term.
# TYPE walrus_raft_term gauge
walrus_raft_term{node_id="1"} 5
# HELP walrus_raft_voters Voting members in the current configuration.
# TYPE walrus_raft_voters gauge
walrus_raft_voters{node_id="1"} 3
`
	names := []string{"walrus_raft_applied_index", "walrus_raft_commit_index", "walrus_raft_has_leader",
		"walrus_raft_is_leader", "walrus_raft_log_index", "walrus_raft_leader_id", "walrus_raft_learners",
		"walrus_raft_replication_lag_entries", "walrus_raft_replication_match_index", "walrus_raft_snapshot_index",
		"walrus_raft_snapshot_term", "walrus_raft_snapshot_bytes", "walrus_raft_snapshot_persist_seconds", "walrus_raft_snapshot_restore_seconds", "walrus_raft_state", "walrus_raft_term", "walrus_raft_voters"}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}

func TestRaftCollectorFollowerAndNoLeader(t *testing.T) {
	m := New(2)
	s := leaderStats()
	s.State = "Candidate"
	s.HasLeader = false
	s.LeaderID = 1 // stale: must be reported as 0 without HasLeader
	m.SetRaftSource(func() RaftStats { return s })
	want := `
# HELP walrus_raft_leader_id Node id of the current Raft leader; 0 when there is none.
# TYPE walrus_raft_leader_id gauge
walrus_raft_leader_id{node_id="2"} 0
# HELP walrus_raft_is_leader 1 when this node is the Raft leader.
# TYPE walrus_raft_is_leader gauge
walrus_raft_is_leader{node_id="2"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "walrus_raft_leader_id", "walrus_raft_is_leader"); err != nil {
		t.Fatal(err)
	}
	// A non-leader reports no replication series even if handed a map.
	if n, err := testutil.GatherAndCount(m.Registry(), "walrus_raft_replication_lag_entries", "walrus_raft_replication_match_index"); err != nil || n != 0 {
		t.Fatalf("replication series on a candidate: %d, %v", n, err)
	}
}

func TestNoSources(t *testing.T) {
	m := New(7)
	want := `
# HELP walrus_raft_source_up 1 when a Raft stats source is installed (0 before the node has started Raft).
# TYPE walrus_raft_source_up gauge
walrus_raft_source_up{node_id="7"} 0
# HELP walrus_cluster_source_up 1 when a cluster metadata source is installed.
# TYPE walrus_cluster_source_up gauge
walrus_cluster_source_up{node_id="7"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "walrus_raft_source_up", "walrus_cluster_source_up"); err != nil {
		t.Fatal(err)
	}
	if n, _ := testutil.GatherAndCount(m.Registry(), "walrus_raft_term", "walrus_topics", "walrus_data_dir_bytes"); n != 0 {
		t.Fatalf("got %d series without sources, want 0", n)
	}
	// Removing a source again works.
	m.SetRaftSource(leaderStats)
	m.SetRaftSource(nil)
	if n, _ := testutil.GatherAndCount(m.Registry(), "walrus_raft_term"); n != 0 {
		t.Fatalf("raft series after removing the source: %d", n)
	}
}

func TestTwoNodesInOneProcess(t *testing.T) {
	// No globals: two nodes' Metrics must not collide.
	a, b := New(1), New(2)
	a.ObserveAppend("t", 1, 10)
	b.ObserveAppend("t", 2, 20)
	if got := testutil.ToFloat64(a.AppendedBytes.WithLabelValues("t")); got != 10 {
		t.Fatalf("node 1 bytes = %v", got)
	}
	if got := testutil.ToFloat64(b.AppendedBytes.WithLabelValues("t")); got != 20 {
		t.Fatalf("node 2 bytes = %v", got)
	}
}

func TestLint(t *testing.T) {
	m := New(1)
	m.SetRaftSource(leaderStats)
	m.SetClusterSource(func() ClusterStats { return ClusterStats{} })
	m.SetDataDir(t.TempDir())
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestTopicLabelBounded(t *testing.T) {
	m := New(1)
	for i := range MaxTopicLabels + 50 {
		m.ObserveAppend(fmt.Sprintf("topic-%d", i), 1, 3)
		m.ObserveRead(fmt.Sprintf("topic-%d", i), 1, 3)
	}
	// A known topic keeps its label after the limit is reached.
	m.ObserveAppend("topic-0", 1, 3)
	n, err := testutil.GatherAndCount(m.Registry(), "walrus_appended_entries_total")
	if err != nil {
		t.Fatal(err)
	}
	if n != MaxTopicLabels+1 {
		t.Fatalf("series = %d, want %d (MaxTopicLabels + %q)", n, MaxTopicLabels+1, OtherTopic)
	}
	if got := testutil.ToFloat64(m.AppendedEntries.WithLabelValues(OtherTopic)); got != 50 {
		t.Fatalf("%s entries = %v, want 50", OtherTopic, got)
	}
	if got := testutil.ToFloat64(m.AppendedEntries.WithLabelValues("topic-0")); got != 2 {
		t.Fatalf("topic-0 entries = %v, want 2", got)
	}
}

func TestObserveRequest(t *testing.T) {
	m := New(1)
	m.ObserveRequest("put", ResultOK, 2*time.Millisecond)
	m.ObserveRequest("PUT", ResultError, time.Millisecond)
	m.ObserveRequest("FROB", ResultError, time.Millisecond)
	for _, c := range []struct {
		cmd, res string
		want     float64
	}{{"PUT", ResultOK, 1}, {"PUT", ResultError, 1}, {"OTHER", ResultError, 1}, {"GET", ResultOK, 0}} {
		if got := testutil.ToFloat64(m.Requests.WithLabelValues(c.cmd, c.res)); got != c.want {
			t.Errorf("requests{%s,%s} = %v, want %v", c.cmd, c.res, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.Requests); n != len(knownCommands)*4 {
		t.Errorf("request series = %d: unknown commands must fold into OTHER", n)
	}
}

func TestObserveRolloverAndForward(t *testing.T) {
	m := New(1)
	m.ObserveRollover(time.Now().Add(-3*time.Second), nil)
	m.ObserveRollover(time.Now(), errors.New("boom"))
	m.ObserveForward("append", nil)
	m.ObserveForward("append", errors.New("down"))
	if got := testutil.ToFloat64(m.Rollovers.WithLabelValues(ResultOK)); got != 1 {
		t.Errorf("ok rollovers = %v", got)
	}
	if got := testutil.ToFloat64(m.Rollovers.WithLabelValues(ResultError)); got != 1 {
		t.Errorf("failed rollovers = %v", got)
	}
	// The 3s rollover lands in the (2.5, 5] bucket; the failed one is not
	// observed at all.
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	checked := false
	for _, mf := range mfs {
		if mf.GetName() != "walrus_rollover_duration_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 1 {
			t.Errorf("observations = %d, want 1", h.GetSampleCount())
		}
		for _, b := range h.GetBucket() {
			want := uint64(0)
			if b.GetUpperBound() >= 5 {
				want = 1
			}
			if b.GetCumulativeCount() != want {
				t.Errorf("bucket le=%v = %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
			}
		}
		checked = true
	}
	if !checked {
		t.Fatal("no walrus_rollover_duration_seconds")
	}
	if got := testutil.ToFloat64(m.Forwarded.WithLabelValues("append", ResultError)); got != 1 {
		t.Errorf("failed forwards = %v", got)
	}
}

func TestClusterCollector(t *testing.T) {
	m := New(2)
	m.SetClusterSource(func() ClusterStats {
		return ClusterStats{Topics: []TopicStats{
			{Name: "logs", CurrentSegment: 3, LeaderNode: 2, SealedSegments: 2, SealedEntries: 1950000,
				SealedLedHere: 1},
			{Name: "events", CurrentSegment: 1, LeaderNode: 1, SealedLedHere: 0},
		}}
	})
	want := `
# HELP walrus_segments_led Segments this node leads (open) or led (sealed), from segment_leaders.
# TYPE walrus_segments_led gauge
walrus_segments_led{node_id="2",state="open"} 1
walrus_segments_led{node_id="2",state="sealed"} 1
# HELP walrus_segments_open Open segments in the cluster (one per topic).
# TYPE walrus_segments_open gauge
walrus_segments_open{node_id="2"} 2
# HELP walrus_segments_sealed Sealed segments in the cluster.
# TYPE walrus_segments_sealed gauge
walrus_segments_sealed{node_id="2"} 2
# HELP walrus_topic_current_segment Id of the topic's open segment (STATE current_segment).
# TYPE walrus_topic_current_segment gauge
walrus_topic_current_segment{node_id="2",topic="events"} 1
walrus_topic_current_segment{node_id="2",topic="logs"} 3
# HELP walrus_topic_segment_leader Node id leading the topic's open segment (STATE leader_node).
# TYPE walrus_topic_segment_leader gauge
walrus_topic_segment_leader{node_id="2",topic="events"} 1
walrus_topic_segment_leader{node_id="2",topic="logs"} 2
# HELP walrus_topic_sealed_entries Entries in the topic's sealed segments.
# TYPE walrus_topic_sealed_entries gauge
walrus_topic_sealed_entries{node_id="2",topic="events"} 0
walrus_topic_sealed_entries{node_id="2",topic="logs"} 1.95e+06
# HELP walrus_topics Topics in the cluster metadata.
# TYPE walrus_topics gauge
walrus_topics{node_id="2"} 2
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "walrus_segments_led", "walrus_segments_open",
		"walrus_segments_sealed", "walrus_topic_current_segment", "walrus_topic_segment_leader", "walrus_topic_sealed_entries", "walrus_topics"); err != nil {
		t.Fatal(err)
	}
}

func TestClusterCollectorBoundsTopics(t *testing.T) {
	m := New(1)
	topics := make([]TopicStats, MaxTopicLabels+10)
	for i := range topics {
		topics[i] = TopicStats{Name: fmt.Sprintf("t%04d", i), CurrentSegment: 1}
	}
	m.SetClusterSource(func() ClusterStats { return ClusterStats{Topics: topics} })
	if n, _ := testutil.GatherAndCount(m.Registry(), "walrus_topic_current_segment"); n != MaxTopicLabels {
		t.Fatalf("per-topic series = %d, want %d", n, MaxTopicLabels)
	}
	if got := gaugeValue(t, m.Registry(), "walrus_topics"); got != float64(len(topics)) {
		t.Fatalf("walrus_topics = %v, want %d (totals cover every topic)", got, len(topics))
	}
}

func gaugeValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			if c := mf.GetMetric()[0].GetCounter(); c != nil {
				return c.GetValue()
			}
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no single series %s", name)
	return 0
}

func TestDiskCollector(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "user_data", "data_plane"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "user_data", "data_plane", "seg"), bytes.Repeat([]byte("x"), 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	m := New(1)
	m.SetDataDir(dir)
	before := float64(time.Now().UnixNano()) / 1e9
	first := gaugeValue(t, m.Registry(), "walrus_data_dir_bytes")
	if first < 64<<10 {
		t.Fatalf("data dir bytes = %v, want >= %d", first, 64<<10)
	}
	walked := gaugeValue(t, m.Registry(), "walrus_data_dir_walk_timestamp_seconds")
	if walked < before || walked > float64(time.Now().UnixNano())/1e9 {
		t.Fatalf("walk timestamp %v, want between %v and now", walked, before)
	}
	if free, size := gaugeValue(t, m.Registry(), "walrus_disk_free_bytes"), gaugeValue(t, m.Registry(), "walrus_disk_size_bytes"); free <= 0 || size < free {
		t.Fatalf("free=%v size=%v", free, size)
	}
	// Within the cache TTL a new file is not seen (no walk per scrape).
	if err := os.WriteFile(filepath.Join(dir, "more"), bytes.Repeat([]byte("y"), 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := gaugeValue(t, m.Registry(), "walrus_data_dir_bytes"); got != first {
		t.Fatalf("cached value changed within TTL: %v -> %v", first, got)
	}
	// With the cache expired the walk sees it.
	m.disk.mu.Lock()
	m.disk.walkedAt = time.Now().Add(-2 * diskCacheTTL)
	m.disk.mu.Unlock()
	if got := gaugeValue(t, m.Registry(), "walrus_data_dir_bytes"); got < first+64<<10 {
		t.Fatalf("after TTL data dir bytes = %v, want >= %v", got, first+64<<10)
	}
	if got := gaugeValue(t, m.Registry(), "walrus_data_dir_walk_timestamp_seconds"); got <= walked {
		t.Fatalf("walk timestamp after a new walk = %v, want > %v", got, walked)
	}
	// A missing directory counts an error instead of failing the scrape.
	m.SetDataDir(filepath.Join(dir, "missing"))
	if got := gaugeValue(t, m.Registry(), "walrus_disk_stat_errors_total"); got < 1 {
		t.Fatalf("stat errors = %v, want >= 1", got)
	}
}

func TestCountingHandler(t *testing.T) {
	m := New(1)
	var buf bytes.Buffer
	// The wrapped handler only shows ERROR: WARN must be counted anyway.
	next := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError})
	logger := slog.New(CountingHandler(next, m)).With("component", "test").WithGroup("g")
	logger.Info("Node 1 booting")
	logger.Warn("slow")
	logger.Error("monitor tick failed", "err", "x")
	logger.Error("Lease sync failed")
	if got := testutil.ToFloat64(m.LogMessages.WithLabelValues("error")); got != 2 {
		t.Errorf("error count = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.LogMessages.WithLabelValues("warn")); got != 1 {
		t.Errorf("warn count = %v, want 1", got)
	}
	out := buf.String()
	if !strings.Contains(out, "monitor tick failed") || !strings.Contains(out, "component=test") || strings.Contains(out, "slow") || strings.Contains(out, "booting") {
		t.Errorf("wrapped handler output wrong:\n%s", out)
	}
}

// fakeStore fails every call with err.
type fakeStore struct{ err error }

func (f fakeStore) Append(context.Context, engine.SegmentID, [][]byte) (uint64, error) {
	return 0, f.err
}
func (f fakeStore) Read(context.Context, engine.SegmentID, uint64, int, int) ([][]byte, error) {
	return nil, f.err
}
func (f fakeStore) Seal(context.Context, engine.SegmentID) (engine.SegmentInfo, error) {
	return engine.SegmentInfo{}, f.err
}
func (f fakeStore) Stat(context.Context, engine.SegmentID) (engine.SegmentInfo, error) {
	return engine.SegmentInfo{}, f.err
}
func (f fakeStore) List(context.Context, string) ([]engine.SegmentInfo, error) { return nil, f.err }
func (f fakeStore) Delete(context.Context, engine.SegmentID) error             { return f.err }
func (f fakeStore) Sync(context.Context) error                                 { return f.err }
func (f fakeStore) Close() error                                               { return nil }

func TestInstrumentStore(t *testing.T) {
	ctx := t.Context()
	id := engine.SegmentID{Topic: "t", Segment: 1}
	for _, tc := range []struct {
		name      string
		err       error
		wantError float64
	}{
		{"ok", nil, 0},
		{"not found is not a backend error", fmt.Errorf("x: %w", engine.ErrNotFound), 0},
		{"out of range is not a backend error", engine.ErrOutOfRange, 0},
		{"cancelled is not a backend error", context.Canceled, 0},
		{"unavailable is", fmt.Errorf("x: %w", engine.ErrUnavailable), 1},
		{"corrupt is", engine.ErrCorrupt, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(1)
			s := InstrumentStore(fakeStore{err: tc.err}, m)
			_, err1 := s.Append(ctx, id, [][]byte{[]byte("a")})
			_, _ = s.Read(ctx, id, 0, 1, 1)
			_, _ = s.Seal(ctx, id)
			_, _ = s.Stat(ctx, id)
			_, _ = s.List(ctx, "")
			_ = s.Delete(ctx, id)
			_ = s.Sync(ctx)
			if !errors.Is(err1, tc.err) {
				t.Fatalf("error not passed through: %v", err1)
			}
			for _, op := range storageOps {
				if got := testutil.ToFloat64(m.StorageErrors.WithLabelValues(op)); got != tc.wantError {
					t.Errorf("errors{op=%s} = %v, want %v", op, got, tc.wantError)
				}
			}
			if n := testutil.CollectAndCount(m.StorageDuration); n != len(storageOps) {
				t.Errorf("duration series = %d", n)
			}
			mfs, _ := m.Registry().Gather()
			for _, mf := range mfs {
				if mf.GetName() != "walrus_storage_operation_duration_seconds" {
					continue
				}
				for _, s := range mf.GetMetric() {
					if s.GetHistogram().GetSampleCount() != 1 {
						t.Errorf("op %v observed %d times, want 1", s.GetLabel(), s.GetHistogram().GetSampleCount())
					}
				}
			}
		})
	}
}

func TestCountListener(t *testing.T) {
	m := New(1)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := m.CountListener(inner, PortClient)
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			done <- err
			return
		}
		_, err = c.Write([]byte("pong!!!"))
		done <- err
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := m.CountConn(raw, PortRaft)
	defer c.Close()
	if _, err := c.Write([]byte("ping!")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 7)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		port, dir string
		want      float64
	}{{PortClient, "rx", 5}, {PortClient, "tx", 7}, {PortRaft, "tx", 5}, {PortRaft, "rx", 7}} {
		if got := testutil.ToFloat64(m.NetworkBytes.WithLabelValues(tc.port, tc.dir)); got != tc.want {
			t.Errorf("network bytes{%s,%s} = %v, want %v", tc.port, tc.dir, got, tc.want)
		}
	}
}

func TestStorageHealthy(t *testing.T) {
	m := New(1)
	s := InstrumentStore(fakeStore{err: nil}, m)
	bad := InstrumentStore(fakeStore{err: engine.ErrUnavailable}, m)
	benign := InstrumentStore(fakeStore{err: engine.ErrNotFound}, m)
	ctx := t.Context()
	id := engine.SegmentID{Topic: "t", Segment: 1}
	if ok, why := m.StorageHealthy(); !ok {
		t.Fatalf("fresh: unhealthy %q", why)
	}
	_ = bad.Sync(ctx)
	if ok, why := m.StorageHealthy(); ok || !strings.Contains(why, "sync failed") {
		t.Fatalf("after a backend error: %v %q", ok, why)
	}
	_, _ = benign.Stat(ctx, id) // the backend answered: healthy again
	if ok, why := m.StorageHealthy(); !ok {
		t.Fatalf("after a contract error: unhealthy %q", why)
	}
	_, _ = bad.Append(ctx, id, [][]byte{nil})
	_ = s.Sync(ctx)
	if ok, why := m.StorageHealthy(); !ok {
		t.Fatalf("after a success: unhealthy %q", why)
	}
	// An old error with no traffic since expires.
	_ = bad.Sync(ctx)
	m.storageMu.Lock()
	m.storageLastErr = time.Now().Add(-StorageUnhealthyFor - time.Second)
	m.storageMu.Unlock()
	if ok, why := m.StorageHealthy(); !ok {
		t.Fatalf("expired error: unhealthy %q", why)
	}
}
