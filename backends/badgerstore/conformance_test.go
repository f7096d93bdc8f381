package badgerstore

import (
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
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
// while the store is open and idle, close the store (releasing badger's
// directory lock and goroutines; its clean-close flush lands in the old
// files), and put the copy back: the next Open sees only the crash image
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
// compacting in the background (a crash can happen at such a moment too,
// but a file copy is not atomic the way a crash is). A copy during which a
// file appeared or vanished is retried, so the image never holds a MANIFEST
// naming a table that is missing or lacks a WAL whose table was not copied.
func snapshotDir(src, dst string) error {
	const attempts = 50
	var err error
	for range attempts {
		var before []string
		if before, err = fileNames(src); err != nil {
			return err
		}
		if err = os.RemoveAll(dst); err != nil {
			return err
		}
		err = copyDir(src, dst)
		if after, err2 := fileNames(src); err == nil && err2 == nil && slices.Equal(before, after) {
			return nil
		}
	}
	return fmt.Errorf("directory kept changing during %d copies (last error %v)", attempts, err)
}

func fileNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
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
