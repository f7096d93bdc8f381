package mmapstore

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/engine/enginetest"
)

// crashSegmentFileBytes is small so that appends often grow and remap the
// file, the riskiest moment to be killed.
const crashSegmentFileBytes = 16 << 10

// TestCrashKill SIGKILLs a child process appending from three goroutines
// (enginetest.Crash), cycling through the three durability modes, and also
// requires that recovery never reports corruption after a plain process
// kill.
func TestCrashKill(t *testing.T) {
	// Written only by stores Crash opens and closes itself, so read after
	// Crash returns without a lock.
	var recoveryLog bytes.Buffer
	enginetest.Crash(t, enginetest.CrashHarness{
		Open: func(tb testing.TB, dir string, opts engine.Options) (engine.SegmentStore, error) {
			o := DefaultOptions()
			o.Store.Durability = opts.Durability
			o.Store.SyncInterval = 5 * time.Millisecond
			o.SegmentFileBytes = crashSegmentFileBytes
			return Open(dir, o)
		},
		Reopen: func(tb testing.TB, dir string) (engine.SegmentStore, error) {
			o := DefaultOptions()
			o.SegmentFileBytes = crashSegmentFileBytes
			o.Logger = slog.New(slog.NewTextHandler(&recoveryLog, &slog.HandlerOptions{Level: slog.LevelInfo}))
			return Open(dir, o)
		},
		Kills:        8,
		MaxKills:     40,
		Budget:       12 * time.Second,
		KillAfterMin: 5 * time.Millisecond,
		KillAfterMax: 84 * time.Millisecond,
		Writers:      3,
		Entry:        entryFor,
	})
	log := recoveryLog.Bytes()
	t.Logf("recovery cut %d torn tails and removed %d segments with no whole batch",
		bytes.Count(log, []byte("truncated torn tail")), bytes.Count(log, []byte("removed segment with no complete batch")))
	if bytes.Contains(log, []byte("corrupt")) {
		t.Fatalf("recovery reported corruption after plain process kills:\n%s", log)
	}
}
