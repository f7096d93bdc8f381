package badgerstore

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/walrus-go/walrus/engine"
)

// removeEmptyMemtableWALs deletes zero-length memtable WAL files (*.mem)
// from dir before badger opens it.
//
// Why: badger retires a flushed memtable by truncating its WAL to zero and
// then removing it (ristretto z.MmapFile.Delete), and creates a new one by
// creating it and then sizing it. A crash between those two steps leaves a
// zero-length .mem file, which badger.Open cannot open ("while opening fid:
// N err: Create a new file"), so the store would not come back. Such a file
// holds no entry (the flushed data is in an SST, a new WAL was never
// written), so removing it loses nothing. Our crash emulation hit this
// window; a SIGKILL can too.
//
// It takes badger's own directory lock (flock on the directory) while it
// looks, so it never touches the files of a live badger in another
// process.
func removeEmptyMemtableWALs(dir string, logger *slog.Logger) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w: %w", dir, engine.ErrUnavailable, err)
	}
	defer d.Close() // closing the descriptor also drops the flock
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("lock %s (another process is using it?): %w: %w", dir, engine.ErrUnavailable, err)
	}
	ents, err := d.ReadDir(-1)
	if err != nil {
		return fmt.Errorf("list %s: %w: %w", dir, engine.ErrUnavailable, err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".mem") {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() != 0 {
			continue // vanished, or has content: badger's business
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove empty WAL %s: %w: %w", path, engine.ErrUnavailable, err)
		}
		logger.Warn("removed an empty memtable WAL left by a crash", "file", path)
	}
	return nil
}
