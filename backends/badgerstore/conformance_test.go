package badgerstore

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/engine/enginetest"
)

// testOptions keeps badger to a few MiB so the suite is fast and light; the
// 1 MiB memtable also makes badger's transaction limit (15% of it) small
// enough that the suite's larger batches take the split path.
func testOptions(tb testing.TB, store engine.Options) Options {
	o := SmallOptions()
	o.Store = store
	o.Logger = slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return o
}

func harness() enginetest.Harness {
	return enginetest.Harness{
		Open: func(tb testing.TB, dir string) (engine.SegmentStore, error) {
			return Open(dir, testOptions(tb, engine.DefaultOptions()))
		},
		OpenWith: func(tb testing.TB, dir string, opts engine.Options) (engine.SegmentStore, error) {
			return Open(dir, testOptions(tb, opts))
		},
		Crash: crash,
	}
}

// crash abandons a store the way a killed process would. Badger writes its
// memtable WAL and value log through shared mmaps, so the files as read now
// are what the page cache would hold after a SIGKILL. We copy the directory
// while the store is open and idle (see snapshotDir), close the store
// (releasing badger's directory lock and goroutines; its clean-close flush
// lands in the old files), and put the copy back: the next Open sees only the crash image
// and must recover through badger's WAL replay. The real thing, a SIGKILLed
// child process, is TestCrashKill.
func crash(s engine.SegmentStore) {
	st := s.(*Store)
	image := st.dir + ".crash"
	if err := snapshotDir(st.dir, image); err != nil {
		panic("badgerstore test: snapshot for crash: " + err.Error())
	}
	_ = st.Close() // its result is irrelevant: the image replaces its work
	if err := os.RemoveAll(st.dir); err != nil {
		panic("badgerstore test: crash: " + err.Error())
	}
	if err := os.Rename(image, st.dir); err != nil {
		panic("badgerstore test: crash: " + err.Error())
	}
}

// snapshotDir copies src to dst while badger may be flushing a memtable or
// compacting in the background. A crash freezes every file at one instant;
// a file-by-file copy does not (we once caught an SST half written while the
// MANIFEST copied a moment later already named it). So the directory is
// copied twice in a row and kept only if both copies are identical: any
// change during the second copy would make some file differ from the first,
// so an identical pair means the second copy saw one quiet state.
func snapshotDir(src, dst string) error {
	const attempts = 50
	first := dst + ".1"
	defer os.RemoveAll(first)
	var err error
	for range attempts {
		if err = os.RemoveAll(first); err != nil {
			return err
		}
		if err = os.RemoveAll(dst); err != nil {
			return err
		}
		if err = copyDir(src, first); err != nil {
			continue // a file vanished under us: try again
		}
		if err = copyDir(src, dst); err != nil {
			continue
		}
		var same bool
		if same, err = sameTree(first, dst); err != nil {
			return err
		}
		if same {
			return nil
		}
	}
	return fmt.Errorf("directory kept changing during %d attempts (last error %v)", attempts, err)
}

// sameTree reports whether two flat directories hold the same files with
// the same bytes.
func sameTree(a, b string) (bool, error) {
	ea, err := os.ReadDir(a)
	if err != nil {
		return false, err
	}
	eb, err := os.ReadDir(b)
	if err != nil {
		return false, err
	}
	if len(ea) != len(eb) {
		return false, nil
	}
	for i := range ea {
		if ea[i].Name() != eb[i].Name() {
			return false, nil
		}
		x, err := os.ReadFile(filepath.Join(a, ea[i].Name()))
		if err != nil {
			return false, err
		}
		y, err := os.ReadFile(filepath.Join(b, eb[i].Name()))
		if err != nil {
			return false, err
		}
		if !bytes.Equal(x, y) {
			return false, nil
		}
	}
	return true, nil
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

func TestConformance(t *testing.T) { runConformance(t, harness()) }

func runConformance(t *testing.T, h enginetest.Harness) { enginetest.Run(t, h) }
