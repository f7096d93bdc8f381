package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// InstrumentStore wraps s so every SegmentStore call is timed in
// walrus_storage_operation_duration_seconds{op} and failures are counted in
// walrus_storage_operation_errors_total{op}. Outcomes that are part of the
// contract rather than backend trouble (not found, sealed, out of range,
// invalid name/argument, a cancelled ctx) are not counted as errors, so the
// error counter means "the backend is unhealthy".
//
// Close is passed through untimed. The wrapper hides optional capability
// interfaces of s; callers that need them should keep the unwrapped store.
func InstrumentStore(s engine.SegmentStore, m *Metrics) engine.SegmentStore {
	return &instrumentedStore{s: s, m: m}
}

type instrumentedStore struct {
	s engine.SegmentStore
	m *Metrics
}

var _ engine.SegmentStore = (*instrumentedStore)(nil)

// IsBackendError reports whether err from a SegmentStore call indicates a
// backend problem (as opposed to a normal contract outcome).
func IsBackendError(err error) bool {
	if err == nil {
		return false
	}
	for _, benign := range []error{engine.ErrNotFound, engine.ErrSealed, engine.ErrOutOfRange,
		engine.ErrInvalidName, engine.ErrInvalidArgument, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, benign) {
			return false
		}
	}
	return true
}

func (i *instrumentedStore) observe(op string, start time.Time, err error) {
	i.m.ObserveStorage(op, start, err)
}

func (i *instrumentedStore) Append(ctx context.Context, id engine.SegmentID, entries [][]byte) (uint64, error) {
	start := time.Now()
	first, err := i.s.Append(ctx, id, entries)
	i.observe("append", start, err)
	return first, err
}

func (i *instrumentedStore) Read(ctx context.Context, id engine.SegmentID, offset uint64, maxEntries, maxBytes int) ([][]byte, error) {
	start := time.Now()
	out, err := i.s.Read(ctx, id, offset, maxEntries, maxBytes)
	i.observe("read", start, err)
	return out, err
}

func (i *instrumentedStore) Seal(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	start := time.Now()
	info, err := i.s.Seal(ctx, id)
	i.observe("seal", start, err)
	return info, err
}

func (i *instrumentedStore) Stat(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	start := time.Now()
	info, err := i.s.Stat(ctx, id)
	i.observe("stat", start, err)
	return info, err
}

func (i *instrumentedStore) List(ctx context.Context, topic string) ([]engine.SegmentInfo, error) {
	start := time.Now()
	out, err := i.s.List(ctx, topic)
	i.observe("list", start, err)
	return out, err
}

func (i *instrumentedStore) Delete(ctx context.Context, id engine.SegmentID) error {
	start := time.Now()
	err := i.s.Delete(ctx, id)
	i.observe("delete", start, err)
	return err
}

func (i *instrumentedStore) Sync(ctx context.Context) error {
	start := time.Now()
	err := i.s.Sync(ctx)
	i.observe("sync", start, err)
	return err
}

func (i *instrumentedStore) Close() error { return i.s.Close() }
