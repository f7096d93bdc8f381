package badgerstore

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/engine/enginetest"
)

// crashSegmentEntries is where the child seals a segment and moves on.
const crashSegmentEntries = 4000

// TestCrashKill SIGKILLs a child process appending to badger
// (enginetest.Crash) six times, cycling through the durability modes, with
// batches that take the split path and entries that live in the value log.
func TestCrashKill(t *testing.T) {
	enginetest.Crash(t, enginetest.CrashHarness{
		Open: func(tb testing.TB, dir string, opts engine.Options) (engine.SegmentStore, error) {
			return Open(dir, testOptions(tb, opts))
		},
		Kills:        6,
		KillAfterMin: 50 * time.Millisecond,
		KillAfterMax: 449 * time.Millisecond,
		Writers:      1,
		BatchEntries: func(_ engine.SegmentID, count uint64) int { return crashBatchSize(count) },
		Entry:        func(id engine.SegmentID, offset uint64) []byte { return crashEntry(id.Segment, offset) },
		Seal:         func(_ engine.SegmentID, count uint64) bool { return count >= crashSegmentEntries },
	})
}

// crashBatchSize is the size of the batch the child appends when the
// segment holds count entries. Every fifth batch is large enough to take
// the split path (several badger transactions), where a crash between
// transactions must not leave a torn batch.
func crashBatchSize(count uint64) int {
	if count%5 == 3 {
		return 1500 + int(count%700)
	}
	return 1 + int(count%17)
}

// crashEntry is the content of entry offset of segment seg; length and
// bytes depend on both. Most entries are 0..299 bytes (stored in the LSM
// tree); one in 97 is 2000 bytes, above the test ValueThreshold, so the
// value log is crash-tested too.
func crashEntry(seg, offset uint64) []byte {
	n := int((offset*31 + seg*7) % 300)
	if offset%97 == 5 {
		n = 2000 // above the test value threshold: lives in the value log
	}
	e := make([]byte, n)
	var w [16]byte
	binary.BigEndian.PutUint64(w[:8], seg)
	binary.BigEndian.PutUint64(w[8:], offset)
	for i := range e {
		e[i] = w[i%16] ^ byte(i)
	}
	return e
}
