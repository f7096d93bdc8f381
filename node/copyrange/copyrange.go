// Package copyrange owns copying a range of a segment from one replica to
// another, a bounded batch at a time (catch-up, recovery, re-replication).
package copyrange

import (
	"context"
	"fmt"
	"time"
)

// copyMaxEntries bounds one read and one append of a copy.
const copyMaxEntries = 4096

// Source reads a segment from one replica.
type Source interface {
	RecoveryRead(ctx context.Context, topic string, seg, off uint64, max int) ([][]byte, error)
}

// Target stores entries on one replica.
type Target interface {
	ReplicaAppend(ctx context.Context, topic string, seg, epoch, first uint64, entries [][]byte) (uint64, error)
}

// Copy copies entries [from, to) of a segment from src to dst at
// epoch, a bounded batch at a time.
func Copy(ctx context.Context, src Source, dst Target, topic string, seg, epoch, from, to uint64, callTimeout time.Duration) error {
	for from < to {
		want := int(min(to-from, copyMaxEntries))
		rctx, cancel := context.WithTimeout(ctx, callTimeout)
		entries, err := src.RecoveryRead(rctx, topic, seg, from, want)
		cancel()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if len(entries) == 0 {
			return fmt.Errorf("source returned no entries at offset %d", from)
		}
		actx, cancel := context.WithTimeout(ctx, callTimeout)
		c, err := dst.ReplicaAppend(actx, topic, seg, epoch, from, entries)
		cancel()
		if err != nil {
			return fmt.Errorf("append: %w", err)
		}
		if c <= from {
			return fmt.Errorf("target did not advance at offset %d", from)
		}
		from = c
	}
	return nil
}
