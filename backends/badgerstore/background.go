package badgerstore

import (
	"errors"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// maxGCRounds bounds the value-log files rewritten per GC tick, so one tick
// never monopolises the disk.
const maxGCRounds = 16

// runSyncer implements durability interval: badger commits without fsync,
// and this loop fsyncs the value log and memtable WAL every interval.
func (s *Store) runSyncer(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if err := s.db.Sync(); err != nil {
			// No caller to return it to; the next tick (or Close) retries.
			s.logger.Error("periodic sync failed", "err", err)
		}
		s.syncRuns.Add(1)
	}
}

// runValueLogGC reclaims value-log space held by deleted segments. Only
// entries of at least ValueThreshold bytes live in the value log, so with
// small entries there is little to do.
func (s *Store) runValueLogGC(interval time.Duration, discardRatio float64) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.gcRuns.Add(1)
		for range maxGCRounds {
			err := s.db.RunValueLogGC(discardRatio)
			if err != nil {
				// ErrNoRewrite: nothing worth rewriting; ErrRejected: a GC
				// is already running or the DB is closing.
				if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
					s.logger.Warn("value log GC failed", "err", err)
				}
				break
			}
			select {
			case <-s.stop:
				return
			default:
			}
		}
	}
}
