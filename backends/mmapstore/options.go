package mmapstore

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/walrus-go/walrus/engine"
)

// Options configure a Store. Get a fresh value from DefaultOptions and
// change what you need; Open validates it.
type Options struct {
	// Store holds the settings every backend shares: durability mode, sync
	// interval and size limits. Default engine.DefaultOptions().
	Store engine.Options
	// SegmentFileBytes is the growth step of a segment file (default
	// 64 MiB, at least 4 KiB, at most 1 TiB). A new file starts at
	// InitialFileBytes (or SegmentFileBytes when that is smaller) and a
	// segment that outgrows its file is extended, doubling until it
	// reaches SegmentFileBytes and by SegmentFileBytes (at most 1 GiB)
	// after that, and remapped; sealing trims the file to the bytes used.
	// So an empty or small segment costs disk in proportion to its data.
	SegmentFileBytes int64
	// InitialFileBytes is the size of a new segment file (default 4 KiB,
	// at least 4 KiB).
	InitialFileBytes int64
	// MaxMappedSegments bounds how many sealed segments are memory-mapped
	// at once (default 64, 1..1048576). Sealed segments are mapped on
	// demand and unmapped least-recently-used first; a sealed segment
	// holds no file descriptor. Open segments are bounded by
	// MaxOpenSegments instead.
	MaxMappedSegments int
	// MaxOpenSegments bounds how many open segments hold a file
	// descriptor and a mapping at once (default 4096, 1..1048576). Idle
	// ones beyond it are parked (fsynced in the durable modes, unmapped,
	// their descriptor closed, their index kept) and mapped again by
	// their next append, read or seal, so a store can hold far more open
	// segments than the process may have descriptors or mappings.
	MaxOpenSegments int
	// Logger receives recovery and error reports; nil discards them.
	Logger *slog.Logger
}

// DefaultOptions returns a fresh Options value with the defaults.
func DefaultOptions() Options {
	return Options{
		Store:             engine.DefaultOptions(),
		SegmentFileBytes:  64 << 20,
		InitialFileBytes:  4 << 10,
		MaxMappedSegments: 64,
		MaxOpenSegments:   4096,
	}
}

const (
	minSegmentFileBytes  = 4 << 10
	maxSegmentFileBytes  = 1 << 40
	maxMappedSegmentsMax = 1 << 20
	// maxBatchBytesMax keeps a batch body addressable by the u32 length in
	// the batch header, framing included.
	maxBatchBytesMax = 1 << 30
)

// Validate reports every field outside its allowed range, each by name.
func (o Options) Validate() error {
	var errs []error
	if err := o.Store.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("Store: %w", err))
	}
	if o.Store.Limits.MaxBatchBytes > maxBatchBytesMax {
		errs = append(errs, fmt.Errorf("Store.Limits.MaxBatchBytes %d: must be <= %d: %w", o.Store.Limits.MaxBatchBytes, maxBatchBytesMax, engine.ErrInvalidArgument))
	}
	if o.InitialFileBytes != 0 && (o.InitialFileBytes < minSegmentFileBytes || o.InitialFileBytes > maxSegmentFileBytes) {
		errs = append(errs, fmt.Errorf("InitialFileBytes %d: must be 0 (default) or in [%d, %d]: %w", o.InitialFileBytes, minSegmentFileBytes, int64(maxSegmentFileBytes), engine.ErrInvalidArgument))
	}
	if o.SegmentFileBytes < minSegmentFileBytes || o.SegmentFileBytes > maxSegmentFileBytes {
		errs = append(errs, fmt.Errorf("SegmentFileBytes %d: must be in [%d, %d]: %w", o.SegmentFileBytes, minSegmentFileBytes, int64(maxSegmentFileBytes), engine.ErrInvalidArgument))
	}
	if o.MaxMappedSegments < 1 || o.MaxMappedSegments > maxMappedSegmentsMax {
		errs = append(errs, fmt.Errorf("MaxMappedSegments %d: must be in [1, %d]: %w", o.MaxMappedSegments, maxMappedSegmentsMax, engine.ErrInvalidArgument))
	}
	if o.MaxOpenSegments < 1 || o.MaxOpenSegments > maxMappedSegmentsMax {
		errs = append(errs, fmt.Errorf("MaxOpenSegments %d: must be in [1, %d]: %w", o.MaxOpenSegments, maxMappedSegmentsMax, engine.ErrInvalidArgument))
	}
	return errors.Join(errs...)
}

// initialBytes is the page-rounded size of a new segment file.
func (o Options) initialBytes() int64 {
	n := o.InitialFileBytes
	if n <= 0 {
		n = 4 << 10
	}
	return roundUpPage(max(min(n, o.SegmentFileBytes), minSegmentFileBytes))
}
