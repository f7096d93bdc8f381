package mmapstore

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// A full disk must give an error (ErrUnavailable) and leave the segment
// readable, and appendable again once space returns. Preallocation means
// only growing a file or creating one needs new space, so these tests drive
// the grow path. Two ways to run out: RLIMIT_FSIZE in a child process
// (EFBIG; works anywhere) and, when running as root, a tiny tmpfs (a real
// ENOSPC).

const envDiskFullChild = "MMAPSTORE_DISKFULL_CHILD_DIR"

// diskFullScenario appends 1 KiB entries until the store reports the disk
// full, checks the segment, frees space and checks appends work again.
func diskFullScenario(t *testing.T, dir string, exhaust, free func()) {
	o := testOptions(t)
	o.SegmentFileBytes = 16 << 10
	s := openT(t, dir, o)
	id := engine.SegmentID{Topic: "full", Segment: 0}
	appendBatch := func(first uint64) error {
		batch := make([][]byte, 4)
		for i := range batch {
			batch[i] = make([]byte, 1024)
			copy(batch[i], entryFor(id, first+uint64(i)))
		}
		got, err := s.Append(t.Context(), id, batch)
		if err == nil && got != first {
			t.Fatalf("append returned %d, want %d", got, first)
		}
		return err
	}
	exhaust()
	var n uint64
	var err error
	for range 10000 {
		if err = appendBatch(n); err != nil {
			break
		}
		n += 4
	}
	if !errors.Is(err, engine.ErrUnavailable) || !strings.Contains(err.Error(), "grow") {
		t.Fatalf("append on a full disk after %d entries: %v, want ErrUnavailable from grow", n, err)
	}
	t.Logf("disk full after %d entries: %v", n, err)
	if err := appendBatch(n); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("second append on a full disk: %v", err)
	}
	// A new segment cannot be created either; it leaves nothing behind.
	other := engine.SegmentID{Topic: "full", Segment: 1}
	if _, err := s.Append(t.Context(), other, [][]byte{make([]byte, 100)}); err == nil {
		t.Logf("creating a segment still fit")
	} else if !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("create on a full disk: %v", err)
	}
	if info, err := s.Stat(t.Context(), id); err != nil || info.Entries != n {
		t.Fatalf("stat on a full disk: %+v, %v; want %d entries", info, err, n)
	}
	checkPrefix(t, s, id, n)

	free()
	for range 10 {
		if err := appendBatch(n); err != nil {
			t.Fatalf("append after space returned: %v", err)
		}
		n += 4
	}
	checkPrefix(t, s, id, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, o)
	checkPrefix(t, s, id, n)
	if tmps, _ := filepath.Glob(filepath.Join(dir, "topics", "full", "*"+tmpSuffix)); len(tmps) != 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
}

// checkPrefix verifies n 1 KiB entries made from entryFor.
func checkPrefix(t *testing.T, s *Store, id engine.SegmentID, n uint64) {
	t.Helper()
	got, err := s.Read(t.Context(), id, 0, int(n)+1, 1<<30)
	if err != nil || uint64(len(got)) != n {
		t.Fatalf("read: %d entries, %v; want %d", len(got), err, n)
	}
	for i, e := range got {
		want := make([]byte, 1024)
		copy(want, entryFor(id, uint64(i)))
		if string(e) != string(want) {
			t.Fatalf("entry %d differs", i)
		}
	}
}

// TestDiskFullChild is the child side of TestDiskFullRlimit.
func TestDiskFullChild(t *testing.T) {
	dir := os.Getenv(envDiskFullChild)
	if dir == "" {
		t.Skip("helper process for TestDiskFullRlimit")
	}
	// Past RLIMIT_FSIZE the kernel sends SIGXFSZ, which kills by default;
	// ignored, the write or fallocate fails with EFBIG instead.
	signal.Ignore(syscall.SIGXFSZ)
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &orig); err != nil {
		t.Fatal(err)
	}
	setLimit := func(cur uint64) {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: cur, Max: orig.Max}); err != nil {
			t.Fatalf("setrlimit: %v", err)
		}
	}
	// 16 KiB files grow to 32 and 64 KiB, then hit the limit.
	diskFullScenario(t, filepath.Join(dir, "grow"), func() { setLimit(64 << 10) }, func() { setLimit(orig.Cur) })

	// Creating a segment file that does not fit fails cleanly too.
	o := testOptions(t)
	o.SegmentFileBytes, o.InitialFileBytes = 16<<10, 16<<10
	s := openT(t, filepath.Join(dir, "create"), o)
	id := engine.SegmentID{Topic: "new", Segment: 0}
	setLimit(8 << 10)
	if _, err := s.Append(t.Context(), id, [][]byte{{1}}); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("create over the limit: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "create", "topics", "new", "*")); len(left) != 0 {
		t.Fatalf("files left by a failed create: %v", left)
	}
	setLimit(orig.Cur)
	if _, err := s.Append(t.Context(), id, [][]byte{{1}}); err != nil {
		t.Fatalf("create after the limit was lifted: %v", err)
	}
}

func TestDiskFullRlimit(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiskFullChild$", "-test.v")
	cmd.Env = append(os.Environ(), envDiskFullChild+"="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestDiskFullChild") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}

// TestDiskFullTmpfs runs the scenario on a 192 KiB tmpfs when this process
// may mount one (root); a 96 KiB filler file is what frees the space.
func TestDiskFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=192k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	filler := filepath.Join(mnt, "filler")
	dir := filepath.Join(mnt, "store")
	diskFullScenario(t, dir, func() {
		if err := os.WriteFile(filler, make([]byte, 96<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}, func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	})
}
