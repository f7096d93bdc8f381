package tests

// What the nemesis leaves behind when it fails: the artifacts and where a
// lost entry sits on disk.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// saveArtifacts copies every node's log and the schedule to
// $WALRUS_NEMESIS_ARTIFACTS/seed-<seed>/ when that variable is set (the
// cluster's own directories are removed at cleanup).
func saveArtifacts(t *testing.T, c *testcluster.Cluster, cfg nemesisConfig, n *nemesis) {
	root := os.Getenv("WALRUS_NEMESIS_ARTIFACTS")
	if root == "" {
		return
	}
	dir := filepath.Join(root, fmt.Sprintf("seed-%d", cfg.Seed))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("artifacts: %v", err)
		return
	}
	for _, nd := range c.Nodes {
		for _, src := range []string{nd.LogPath, nd.StderrPath} {
			b, err := os.ReadFile(src)
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, fmt.Sprintf("node%d-%s", nd.ID, filepath.Base(src))), b, 0o644)
			}
			if err != nil {
				t.Logf("artifacts: %v", err)
			}
		}
	}
	sched := fmt.Sprintf("seed %d, started %s\n%s\nreplay: %s\n", cfg.Seed, n.start.UTC().Format(time.RFC3339Nano), scheduleText(n), cfg.replay())
	if err := os.WriteFile(filepath.Join(dir, "schedule.txt"), []byte(sched), 0o644); err != nil {
		t.Logf("artifacts: %v", err)
	}
	t.Logf("node logs and schedule saved in %s", dir)
}

// locateOnDisk says where each of the first ten entries is stored: node,
// segment, offset in the segment, against the segment's sealed count from
// STATE, e.g. "nw1-7 in node 2 segment 24 offset 4999/5000 sealed". That
// tells data loss (nowhere) from entries stored but never delivered (an
// offset below the sealed count: the cursor skipped it; at or beyond it:
// acknowledged past the seal).
func locateOnDisk(c *testcluster.Cluster, topic string, es []entryRef) string {
	var sealed map[string]uint64
	if id, err := c.RaftLeader(); err == nil {
		if st, err := c.State(id, topic); err == nil {
			sealed = st.SealedSegments
		}
	}
	var out []string
	for _, e := range firstN(es, 10) {
		payload := fmt.Sprintf("nw%d-%d", e.Writer, e.Seq)
		var where []string
		for _, nd := range c.Nodes {
			dir := filepath.Join(nd.DataDir, fmt.Sprintf("node_%d", nd.ID), "user_data", "data_plane", "topics", topic)
			files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
			for _, f := range files {
				off, ok := findEntry(f, []byte(payload))
				if !ok {
					continue
				}
				seg := strings.TrimLeft(strings.TrimSuffix(filepath.Base(f), ".seg"), "0")
				state := "open"
				if n, ok := sealed[seg]; ok {
					state = fmt.Sprintf("of %d sealed", n)
				}
				where = append(where, fmt.Sprintf("node %d segment %s offset %d (%s)", nd.ID, seg, off, state))
			}
		}
		if len(where) == 0 {
			where = append(where, "no segment file")
		}
		out = append(out, fmt.Sprintf("%s in %s", payload, strings.Join(where, ", ")))
	}
	return strings.Join(out, "; ")
}

// findEntry walks the batches of an mmap segment file (backends/mmapstore
// README "Format": data from byte 256; batch header "BTCH" | count u32 |
// first offset u64 | body bytes u32 | CRC u32; frames length u32 | CRC u32
// | payload) and returns the offset of the entry equal to payload.
func findEntry(path string, payload []byte) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for pos := 256; pos+24 <= len(b) && string(b[pos:pos+4]) == "BTCH"; {
		count := binary.LittleEndian.Uint32(b[pos+4 : pos+8])
		first := binary.LittleEndian.Uint64(b[pos+8 : pos+16])
		body := int(binary.LittleEndian.Uint32(b[pos+16 : pos+20]))
		f, end := pos+24, min(pos+24+body, len(b))
		for i := uint64(0); i < uint64(count) && f+8 <= end; i++ {
			n := int(binary.LittleEndian.Uint32(b[f : f+4]))
			if f+8+n > end {
				break
			}
			if bytes.Equal(b[f+8:f+8+n], payload) {
				return first + i, true
			}
			f += 8 + n
		}
		pos += 24 + body
	}
	return 0, false
}

func scheduleText(n *nemesis) string {
	var b strings.Builder
	for _, f := range n.schedule {
		rel := func(x time.Time) string {
			if x.IsZero() {
				return "-"
			}
			return fmt.Sprintf("%.3fs", x.Sub(n.start).Seconds())
		}
		fmt.Fprintf(&b, "  %v: start %s end %s healthy %s\n", f, rel(f.Start), rel(f.End), rel(f.Recovered))
	}
	return b.String()
}
