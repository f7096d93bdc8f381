package tests

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/status"
)

// TestDataDirFromBeforeTimestamps starts this build on a data directory
// written by the previous version (testdata/datadir-v1.tar.gz: one node,
// max_segment_entries 5, topic "old" with entries old-0..old-11 in two
// sealed segments and an open one, and a shared cursor at 3; made with the
// commit before timed records). The old entries read as before (GET, and
// FETCH with timestamp_ms 0); new entries are timed from the next segment.
func TestDataDirFromBeforeTimestamps(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, MaxSegmentEntries: 5, MonitorInterval: 100 * time.Millisecond})
	n := c.Node(1)
	c.Stop(1)
	if err := os.RemoveAll(n.DataDir); err != nil {
		t.Fatal(err)
	}
	untar(t, "testdata/datadir-v1.tar.gz", n.DataDir)
	c.StartNode(1)
	c.WaitLeader(1)
	conn := c.Conn(1)
	do := func(line string) string {
		t.Helper()
		r, err := conn.Do(line)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return r
	}
	if got := do("GET old"); got != "OK old-3" {
		t.Fatalf("GET continues at the committed cursor: %q", got)
	}
	var f status.Fetch
	if err := json.Unmarshal([]byte(do("FETCH old 0 100")), &f); err != nil || len(f.Entries) != 12 {
		t.Fatalf("fetch old entries: %+v %v", f, err)
	}
	for i, e := range f.Entries {
		if e.Payload != fmt.Sprintf("old-%d", i) || e.TimestampMs != 0 {
			t.Fatalf("old entry %d: %+v", i, e)
		}
	}
	// The open segment (3, two entries) was written without records: it
	// takes three more bare entries, then the rollover starts records.
	put := func(from, to int) {
		for i := from; i < to; i++ {
			if got := do(fmt.Sprintf("PUT old new-%d", i)); got != "OK" {
				t.Fatalf("put: %s", got)
			}
		}
	}
	put(0, 3)
	testcluster.Eventually(t, 10*time.Second, func() error {
		if s, err := c.State(1, "old"); err != nil || s.CurrentSegment < 4 {
			return fmt.Errorf("segment 3 not rolled yet (%v)", err)
		}
		return nil
	})
	put(3, 8)
	testcluster.Eventually(t, 10*time.Second, func() error {
		if err := json.Unmarshal([]byte(do("FETCH old 12 100")), &f); err != nil {
			return err
		}
		if len(f.Entries) != 8 {
			return fmt.Errorf("%d new entries", len(f.Entries))
		}
		return nil
	})
	timedFrom := -1
	for i, e := range f.Entries {
		if e.Payload != fmt.Sprintf("new-%d", i) {
			t.Fatalf("new entry %d: %+v", i, e)
		}
		if e.TimestampMs > 0 && timedFrom < 0 {
			timedFrom = i
		}
		if timedFrom >= 0 && e.TimestampMs <= 0 {
			t.Fatalf("entry %d untimed after a timed one: %+v", i, e)
		}
	}
	if timedFrom != 3 {
		t.Fatalf("first timed new entry is %d, want 3 (the first of segment 4): %+v", timedFrom, f.Entries)
	}
	var s status.Seek
	if err := json.Unmarshal([]byte(do("SEEK old 1")), &s); err != nil || s.Offset != 15 {
		t.Fatalf("SEEK past the untimed entries: %+v %v", s, err)
	}
}

func untar(t *testing.T, archive, dst string) {
	t.Helper()
	fh, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dst, filepath.Clean(h.Name))
		if !strings.HasPrefix(name, filepath.Clean(dst)+string(os.PathSeparator)) {
			t.Fatalf("archive entry %q escapes %s", h.Name, dst)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(name, 0o755)
		case tar.TypeReg:
			err = writeFile(name, tr, h.FileInfo().Mode())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(name string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
