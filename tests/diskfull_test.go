package tests

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// mountTmpfs mounts a small tmpfs at a fresh directory and unmounts it
// when the test ends (after the cluster, whose cleanup runs first); it
// skips the test when it cannot mount (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a %s tmpfs at %s (needs root or CAP_SYS_ADMIN): %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

var diskFullReply = regexp.MustCompile(`^ERR disk full on node 1: [0-9.]+ (B|KiB|MiB) free, 2\.0 MiB required$`)

// TestDiskFullRecovers fills a walrus process's data directory, an 8 MiB
// tmpfs, with storage.min_free_bytes at 2 MiB: PUTs then answer the
// disk-full ERR, nothing acknowledged is lost, GET/FETCH/metrics keep
// working and the process keeps running; after retention frees space
// (ALTER max_entries) PUTs succeed again without a restart.
func TestDiskFullRecovers(t *testing.T) {
	skipShort(t)
	disk := mountTmpfs(t, "8m")
	c := testcluster.Start(t, testcluster.Options{
		Nodes:             1,
		HTTP:              true,
		MaxSegmentEntries: 100,
		MonitorInterval:   50 * time.Millisecond,
		Extra: map[string]any{
			"data_dir":                        disk,
			"replication_factor":              1,
			"ack_quorum":                      1,
			"storage.mmap.segment_file_bytes": 65536,
			"storage.min_free_bytes":          2 << 20,
			"storage.min_free_percent":        0,
			"retention.check_ms":              100,
		},
	})
	l := dialLog(t, c, 1)
	pad := strings.Repeat("x", 1000)
	var acked []string
	refused := ""
	for i := range 20000 {
		p := fmt.Sprintf("fill-%05d-%s", i, pad)
		r := l.do("PUT df " + p)
		if r == "OK" {
			acked = append(acked, p)
			continue
		}
		refused = r
		break
	}
	if !diskFullReply.MatchString(refused) {
		t.Fatalf("after %d PUTs: %q, want the disk-full ERR", len(acked), abbrev(refused))
	}
	if len(acked) < 1000 {
		t.Fatalf("disk full after only %d entries", len(acked))
	}
	t.Logf("disk full after %d entries: %s", len(acked), refused)
	for range 5 {
		if r := l.do("PUT df more-" + pad); !diskFullReply.MatchString(r) {
			t.Fatalf("PUT while full: %q", abbrev(r))
		}
	}
	if exited, err := c.Exited(1); exited {
		t.Fatalf("walrus exited with a full disk: %v", err)
	}

	// Reads, metrics and the log go on.
	if r := l.do("GET df"); r != "OK "+acked[0] {
		t.Fatalf("GET while full: %q", abbrev(r))
	}
	entries := fetchAll(t, l, "df", 0, 100)
	if len(entries) != len(acked) {
		t.Fatalf("FETCH while full: %d entries, %d acknowledged", len(entries), len(acked))
	}
	for i, e := range entries {
		if e.Payload != acked[i] {
			t.Fatalf("offset %d: %q, want %q", i, abbrev(e.Payload), abbrev(acked[i]))
		}
	}
	if m := scrape(t, c.Node(1).HTTPAddr); !regexp.MustCompile(`(?m)^walrus_disk_full(\{[^}]*\})? 1$`).MatchString(m) {
		t.Fatalf("walrus_disk_full is not 1 while full:\n%s", grepLines(m, "walrus_disk_full"))
	}

	// Retention frees space; writes resume by themselves.
	l.ok("ALTER df max_entries=300")
	testcluster.Eventually(t, 30*time.Second, func() error {
		if r := l.do("PUT df after"); r != "OK" {
			return fmt.Errorf("PUT after retention: %q", abbrev(r))
		}
		return nil
	})
	if exited, err := c.Exited(1); exited {
		t.Fatalf("walrus exited: %v", err)
	}
	o := offsetsOf(l, "df")
	if o.Earliest == 0 || o.Latest != uint64(len(acked))+1 {
		t.Fatalf("OFFSETS after retention %+v, want earliest > 0 and latest %d", o, len(acked)+1)
	}
	entries = fetchAll(t, l, "df", o.Earliest, 100)
	for i, e := range entries[:len(entries)-1] {
		if want := acked[o.Earliest+uint64(i)]; e.Payload != want {
			t.Fatalf("offset %d after retention: %q, want %q", e.Offset, abbrev(e.Payload), abbrev(want))
		}
	}
	if last := entries[len(entries)-1]; last.Payload != "after" {
		t.Fatalf("last entry %q, want after", abbrev(last.Payload))
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		if m := scrape(t, c.Node(1).HTTPAddr); !regexp.MustCompile(`(?m)^walrus_disk_full(\{[^}]*\})? 0$`).MatchString(m) {
			return fmt.Errorf("walrus_disk_full not back to 0: %s", grepLines(m, "walrus_disk_full"))
		}
		return nil
	})
	// The log tells both changes (the clear at most 10 s after the trip:
	// rate-limited).
	testcluster.Eventually(t, 30*time.Second, func() error {
		b, err := os.ReadFile(c.Node(1).LogPath)
		if err != nil {
			return err
		}
		for _, want := range []string{"disk full: refusing appends until space is freed", "disk space available again: accepting appends"} {
			if !strings.Contains(string(b), want) {
				return fmt.Errorf("log has no %q", want)
			}
		}
		return nil
	})
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grepLines(s, prefix string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
