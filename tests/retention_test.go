package tests

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/status"
)

// Retention (issue 14) with real walrus processes: per-topic limits
// (CREATE ... max_age_ms= / max_bytes= / max_entries=, ALTER), defaults
// from the YAML config, DELETE. Every check of a deletion looks at the
// nodes' data directories as well as at the metadata: the files of the
// deleted segments must be gone from every replica.

const (
	retSegEntries = 20                     // max_segment_entries
	retMonitor    = 100 * time.Millisecond // monitor_check_ms
	retCheckMs    = 100                    // retention.check_ms
	retWait       = 20 * time.Second       // bound of every condition wait
)

// startRetCluster starts 3 nodes with small segments, a fast monitor and
// retention pass, and segment files preallocated to 4 KiB instead of
// 64 MiB: a segment of 20 entries fits, so every file is 3-4 KiB whether
// or not its copy was trimmed at sealing yet (a file preallocated to
// 64 KiB weighs 20 sealed ones, and the sizes before and after would
// say more about trimming than about deletion).
func startRetCluster(t *testing.T, extra map[string]any) *testcluster.Cluster {
	t.Helper()
	opts := testcluster.Options{
		Nodes:             3,
		MaxSegmentEntries: retSegEntries,
		MonitorInterval:   retMonitor,
		Extra: map[string]any{
			"retention.check_ms":              retCheckMs,
			"storage.mmap.segment_file_bytes": 4 << 10,
		},
	}
	for k, v := range extra {
		opts.Extra[k] = v
	}
	return testcluster.Start(t, opts)
}

// userData is node n's <data_dir>/node_<id>/user_data.
func userData(n *testcluster.Node) string {
	return filepath.Join(n.DataDir, "node_"+strconv.FormatUint(n.ID, 10), "user_data")
}

// topicDir is where the mmap store keeps topic's segment files on node n.
func topicDir(n *testcluster.Node, topic string) string {
	return filepath.Join(userData(n), "data_plane", "topics", topic)
}

// diskSize is what a directory tree holds: the sum of the files' sizes
// and of the blocks allocated to them (du), in bytes. A missing directory
// holds 0.
type diskSize struct{ apparent, allocated int64 }

func (d diskSize) String() string {
	return fmt.Sprintf("%d B (%d B allocated)", d.apparent, d.allocated)
}

func sizeOf(t testing.TB, dir string) diskSize {
	t.Helper()
	var d diskSize
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // the root is missing, or a file went meanwhile
			}
			return err
		}
		if e.IsDir() {
			return nil
		}
		fi, err := e.Info()
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		d.apparent += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			d.allocated += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatalf("size of %s: %v", dir, err)
	}
	return d
}

// segFiles lists the segment numbers of topic's files on node n (sorted;
// nil when the topic has no directory there).
func segFiles(t testing.TB, n *testcluster.Node, topic string) []uint64 {
	t.Helper()
	es, err := os.ReadDir(topicDir(n, topic))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var segs []uint64
	for _, e := range es {
		digits, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok {
			continue
		}
		s, err := strconv.ParseUint(digits, 10, 64)
		if err != nil {
			t.Fatalf("node %d: unexpected segment file %s", n.ID, e.Name())
		}
		segs = append(segs, s)
	}
	slices.Sort(segs)
	return segs
}

// waitSegFiles waits until every node in ids holds exactly the segment
// files want of topic.
func waitSegFiles(t *testing.T, c *testcluster.Cluster, ids []uint64, topic string, want []uint64, what string) {
	t.Helper()
	if err := testcluster.Poll(retWait, func() error {
		for _, id := range ids {
			if got := segFiles(t, c.Node(id), topic); !slices.Equal(got, want) {
				return fmt.Errorf("node %d holds segment files %v of %s, want %v", id, got, topic, want)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func segRange(from, to uint64) []uint64 { // [from, to]
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// retPayload is the i-th payload of prefix padded with 'x' to size bytes.
func retPayload(prefix string, i, size int) string {
	p := fmt.Sprintf("%s-%05d-", prefix, i)
	if len(p) < size {
		p += strings.Repeat("x", size-len(p))
	}
	return p
}

// writeSegments PUTs rounds of exactly retSegEntries entries to every
// topic, waiting after each round until every running node sees each
// topic's open segment sealed, then tail more entries that stay in the
// open segment. It returns what was written per topic.
func writeSegments(t *testing.T, c *testcluster.Cluster, l *logConn, topics []string, size, rounds, tail int) map[string][]string {
	t.Helper()
	written := map[string][]string{}
	put := func(topic string, n int) {
		for range n {
			p := retPayload(topic, len(written[topic]), size)
			l.ok("PUT " + topic + " " + p)
			written[topic] = append(written[topic], p)
		}
	}
	for range rounds {
		cur := map[string]uint64{}
		for _, topic := range topics {
			st, err := c.State(l.id, topic)
			if err != nil {
				t.Fatal(err)
			}
			cur[topic] = st.CurrentSegment
			put(topic, retSegEntries)
		}
		for _, topic := range topics {
			waitRolled(t, c, topic, cur[topic])
		}
	}
	for _, topic := range topics {
		put(topic, tail)
	}
	return written
}

// stateOf is STATE topic through node id.
func stateOf(t testing.TB, c *testcluster.Cluster, id uint64, topic string) status.State {
	t.Helper()
	st, err := c.State(id, topic)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// firstSegment is the oldest segment STATE still lists (the open one when
// every sealed segment is gone).
func firstSegment(st status.State) uint64 {
	first := st.CurrentSegment
	for k := range st.SealedSegments {
		s, _ := strconv.ParseUint(k, 10, 64)
		first = min(first, s)
	}
	return first
}

// waitEarliest waits until OFFSETS topic answers earliest want on every
// node in ids and returns the offsets.
func waitEarliest(t *testing.T, c *testcluster.Cluster, ids []uint64, topic string, want uint64) status.Offsets {
	t.Helper()
	var off status.Offsets
	if err := testcluster.Poll(retWait, func() error {
		for _, id := range ids {
			l := dialLog(t, c, id)
			r, err := l.send("OFFSETS " + topic)
			l.close()
			if err != nil {
				return err
			}
			if err := decodeStrict(r, &off); err != nil {
				return fmt.Errorf("node %d: OFFSETS %s: %w", id, topic, err)
			}
			if off.Earliest != want {
				return fmt.Errorf("node %d: OFFSETS %s: %+v, want earliest %d", id, topic, off, want)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("retention of %s: %v", topic, err)
	}
	return off
}

// checkRetained checks what a topic with earliest E and latest L serves
// on every node in ids: FETCH 0 and FETCH E-1 are out of range with the
// exact bounds, and FETCH from E returns written[E:L] in order.
func checkRetained(t *testing.T, c *testcluster.Cluster, ids []uint64, topic string, off status.Offsets, written []string) {
	t.Helper()
	if off.Latest != uint64(len(written)) {
		t.Fatalf("OFFSETS %s: %+v, wrote %d entries", topic, off, len(written))
	}
	want := fmt.Sprintf("ERR offset out of range (earliest %d, latest %d)", off.Earliest, off.Latest)
	for _, id := range ids {
		l := dialLog(t, c, id)
		for _, below := range []uint64{0, off.Earliest - 1} {
			if off.Earliest == 0 {
				break
			}
			if r := l.do(fmt.Sprintf("FETCH %s %d", topic, below)); r != want {
				t.Errorf("node %d: FETCH %s %d below earliest: got %q, want %q", id, topic, below, r, want)
			}
		}
		got := fetchAll(t, l, topic, off.Earliest, 7)
		sameList(t, fmt.Sprintf("node %d: FETCH %s from earliest %d", id, topic, off.Earliest), payloadsOf(got), written[off.Earliest:])
	}
}

// topicSizes measures topic's directory on every node in ids.
func topicSizes(t *testing.T, c *testcluster.Cluster, ids []uint64, topic string) map[uint64]diskSize {
	t.Helper()
	out := map[uint64]diskSize{}
	for _, id := range ids {
		out[id] = sizeOf(t, topicDir(c.Node(id), topic))
	}
	return out
}

// checkShrunk logs the sizes before and after and fails unless every
// node's directory holds less after.
func checkShrunk(t *testing.T, what string, before, after map[uint64]diskSize) {
	t.Helper()
	for _, id := range slices.Sorted(maps.Keys(before)) {
		b, a := before[id], after[id]
		t.Logf("%s: node %d: %v before, %v after", what, id, b, a)
		if a.apparent >= b.apparent || a.allocated >= b.allocated {
			t.Errorf("%s: node %d's files did not shrink: %v before, %v after", what, id, b, a)
		}
	}
}

// TestRetentionLimits: one topic per limit, each CREATEd with its limit.
// The oldest sealed segments go, whole, on all three replicas (their files
// too); OFFSETS earliest moves to a segment boundary; FETCH below it is
// out of range; everything at or above it reads back intact from every
// node; the open segment stays even when older than the age limit; the
// shared cursor and a group that read nothing move up to earliest.
func TestRetentionLimits(t *testing.T) {
	skipShort(t)
	c := startRetCluster(t, nil)
	ids := c.IDs()
	l := dialLog(t, c, c.Leader().ID)

	const maxAge = 2000 * time.Millisecond
	l.ok(fmt.Sprintf("CREATE ret-age max_age_ms=%d", maxAge.Milliseconds()))
	l.ok("CREATE ret-bytes max_bytes=5000")
	l.ok("CREATE ret-entries max_entries=50")
	l.ok("REGISTER ret-none")
	for _, topic := range []string{"ret-age", "ret-bytes", "ret-entries"} {
		l.ok("COMMIT slow " + topic + " 0")
	}

	// Age: 5 sealed segments of 20 + 7 entries in the open segment. The age
	// limit runs from each segment's last entry, so measure right away.
	wAge := writeSegments(t, c, l, []string{"ret-age"}, 100, 5, 7)["ret-age"]
	lastAgePut := time.Now()
	st := stateOf(t, c, l.id, "ret-age")
	waitSegFiles(t, c, ids, "ret-age", segRange(firstSegment(st), st.CurrentSegment), "ret-age replicated")
	beforeAge := topicSizes(t, c, ids, "ret-age")

	// Bytes and entries meanwhile (their own limits are enforced while
	// they are written, so they are measured against a topic with no
	// limit written alike).
	w := writeSegments(t, c, l, []string{"ret-bytes", "ret-entries", "ret-none"}, 100, 6, 5)

	t.Run("age", func(t *testing.T) {
		off := waitEarliest(t, c, ids, "ret-age", 100)
		st := stateOf(t, c, l.id, "ret-age")
		if len(st.SealedSegments) != 0 || st.Earliest != 100 || st.Retention != (status.Retention{MaxAgeMs: maxAge.Milliseconds()}) {
			t.Errorf("STATE ret-age after retention: %+v", st)
		}
		waitSegFiles(t, c, ids, "ret-age", []uint64{st.CurrentSegment}, "old ret-age files deleted")
		checkShrunk(t, "ret-age", beforeAge, topicSizes(t, c, ids, "ret-age"))
		checkRetained(t, c, ids, "ret-age", off, wAge)
		// The open segment is never deleted: wait until its entries are
		// twice the limit old, checking all along that nothing moves.
		if err := testcluster.Poll(retWait, func() error {
			o := offsetsOf(l, "ret-age")
			if o != off {
				t.Fatalf("OFFSETS ret-age moved to %+v from %+v with only the open segment left", o, off)
			}
			if since := time.Since(lastAgePut); since < 2*maxAge {
				return fmt.Errorf("open segment only %v old", since)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		checkRetained(t, c, ids[:1], "ret-age", off, wAge)
		checkSkipped(t, c, l, "ret-age", off.Earliest, wAge)
	})

	t.Run("bytes", func(t *testing.T) {
		// 120 entries of 100 payload bytes in 6 sealed segments and 5 in
		// the open one; the store counts 109 B an entry (9 B record
		// header), 2180 B a segment. A segment goes while the topic still
		// holds max_bytes 5000 without it: three go (13625 -> 7085 B), the
		// fourth would leave 4905 < 5000.
		off := waitEarliest(t, c, ids, "ret-bytes", 60)
		st := stateOf(t, c, l.id, "ret-bytes")
		if len(st.SealedSegments) != 3 || st.Retention != (status.Retention{MaxBytes: 5000}) {
			t.Errorf("STATE ret-bytes after retention: %+v", st)
		}
		waitSegFiles(t, c, ids, "ret-bytes", segRange(firstSegment(st), st.CurrentSegment), "old ret-bytes files deleted")
		// Compare with the same data kept whole.
		checkShrunk(t, "ret-bytes vs ret-none", topicSizes(t, c, ids, "ret-none"), topicSizes(t, c, ids, "ret-bytes"))
		checkRetained(t, c, ids, "ret-bytes", off, w["ret-bytes"])
		checkSkipped(t, c, l, "ret-bytes", off.Earliest, w["ret-bytes"])
	})

	t.Run("entries", func(t *testing.T) {
		// 125 entries, max_entries 50: 125 -> 105 -> 85 -> 65, then 45 < 50.
		off := waitEarliest(t, c, ids, "ret-entries", 60)
		st := stateOf(t, c, l.id, "ret-entries")
		if len(st.SealedSegments) != 3 || st.Retention != (status.Retention{MaxEntries: 50}) {
			t.Errorf("STATE ret-entries after retention: %+v", st)
		}
		waitSegFiles(t, c, ids, "ret-entries", segRange(firstSegment(st), st.CurrentSegment), "old ret-entries files deleted")
		checkShrunk(t, "ret-entries vs ret-none", topicSizes(t, c, ids, "ret-none"), topicSizes(t, c, ids, "ret-entries"))
		checkRetained(t, c, ids, "ret-entries", off, w["ret-entries"])
		checkSkipped(t, c, l, "ret-entries", off.Earliest, w["ret-entries"])
		// ALTER lifts the limit: more entries stay.
		l.ok("ALTER ret-entries max_entries=0")
		writeSegments(t, c, l, []string{"ret-entries"}, 100, 3, 0)
		if o := offsetsOf(l, "ret-entries"); o.Earliest != 60 || o.Latest != 125+60 {
			t.Errorf("after ALTER max_entries=0 and 60 more entries: %+v", o)
		}
	})

	// The topic without limits lost nothing.
	if o := offsetsOf(l, "ret-none"); o.Earliest != 0 || o.Latest != 125 {
		t.Errorf("ret-none: %+v", o)
	}
}

// checkSkipped: the shared cursor (never read) and group "slow" (committed
// 0) move up to earliest and say so; GET returns the entry at earliest.
func checkSkipped(t *testing.T, c *testcluster.Cluster, l *logConn, topic string, earliest uint64, written []string) {
	t.Helper()
	cm := committedOf(l, "slow", topic)
	if cm.Offset != int64(earliest) || cm.Skipped != earliest {
		t.Errorf("COMMITTED slow %s after retention to %d: %+v", topic, earliest, cm)
	}
	var gs []status.Group
	l.json("GROUPS "+topic, &gs)
	if len(gs) != 1 || gs[0].Offset != int64(earliest) || gs[0].Skipped != earliest {
		t.Errorf("GROUPS %s after retention to %d: %+v", topic, earliest, gs)
	}
	if r := l.do("GET " + topic); r != "OK "+written[earliest] {
		t.Errorf("GET %s after retention to %d: %q, want the entry at earliest %q", topic, earliest, abbrev(r), abbrev(written[earliest]))
	}
	if st := stateOf(t, c, l.id, topic); st.Skipped != earliest {
		t.Errorf("STATE %s: cursor skipped %d, want %d: %+v", topic, st.Skipped, earliest, st)
	}
}
