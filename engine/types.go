package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxTopicBytes is the longest topic name accepted, in bytes. It keeps every
// topic usable as a single file-name component on common file systems.
const MaxTopicBytes = 255

// SegmentID names one segment: a topic and the segment's number within it.
type SegmentID struct {
	Topic   string
	Segment uint64
}

// String renders the id as "topic/segment", for logs and error messages.
func (id SegmentID) String() string {
	return id.Topic + "/" + strconv.FormatUint(id.Segment, 10)
}

// Validate checks the topic name of the id.
func (id SegmentID) Validate() error { return ValidateTopic(id.Topic) }

// SegmentInfo describes one segment as the store holds it.
type SegmentInfo struct {
	ID SegmentID
	// Entries is the number of entries; the next append gets this offset.
	Entries uint64
	// Bytes is the sum of the payload lengths (framing excluded).
	Bytes uint64
	// Sealed is true once Seal succeeded; the segment is then immutable.
	Sealed bool
}

// SegmentStore is the storage contract every backend implements. The package
// documentation states the semantics of each method precisely.
type SegmentStore interface {
	// Append atomically appends a non-empty batch to the segment, creating
	// it if it does not exist, and returns the offset of the first entry.
	Append(ctx context.Context, id SegmentID, entries [][]byte) (first uint64, err error)
	// Read returns entries from offset on, bounded by maxEntries (>= 1) and
	// maxBytes (>= 1; at least one entry is returned when one exists).
	Read(ctx context.Context, id SegmentID, offset uint64, maxEntries int, maxBytes int) ([][]byte, error)
	// Seal makes the segment immutable and returns its final info.
	Seal(ctx context.Context, id SegmentID) (SegmentInfo, error)
	// Stat reports one segment.
	Stat(ctx context.Context, id SegmentID) (SegmentInfo, error)
	// List reports the segments of topic ordered by segment number, or of
	// every topic (ordered by topic, then segment) when topic is "".
	List(ctx context.Context, topic string) ([]SegmentInfo, error)
	// Delete removes a segment and its data.
	Delete(ctx context.Context, id SegmentID) error
	// Sync makes every acknowledged append durable now.
	Sync(ctx context.Context) error
	// Close flushes and releases the store. It is idempotent.
	Close() error
}

// Durability says when an acknowledged append reaches stable storage.
//
//   - DurabilityNone: appends are acknowledged once they are in the OS page
//     cache (or the backend's memory-mapped file). They survive a crash of
//     the process, not a power loss or kernel crash; the OS writes them back
//     when it chooses.
//   - DurabilityInterval: as None, plus an fsync every SyncInterval. A power
//     loss loses at most the appends of the last interval.
//   - DurabilityAlways: an append is acknowledged only after an fsync that
//     covers it; concurrent writers share one fsync (group commit). Nothing
//     acknowledged is lost on power loss, assuming the disk honours fsync.
type Durability string

const (
	DurabilityNone     Durability = "none"
	DurabilityInterval Durability = "interval"
	DurabilityAlways   Durability = "always"
)

// ParseDurability turns a config string into a Durability.
func ParseDurability(s string) (Durability, error) {
	switch d := Durability(s); d {
	case DurabilityNone, DurabilityInterval, DurabilityAlways:
		return d, nil
	}
	return "", fmt.Errorf("durability %q: want one of none, interval, always: %w", s, ErrInvalidArgument)
}

// Limits bound what a store accepts, so lengths read from disk or the wire
// are checked before anything is allocated.
type Limits struct {
	// MaxEntryBytes is the largest single entry accepted (default 16 MiB).
	MaxEntryBytes int
	// MaxBatchBytes is the largest total payload of one Append (default 64 MiB).
	MaxBatchBytes int
}

// DefaultLimits returns the limits used when a store is given none.
func DefaultLimits() Limits {
	return Limits{MaxEntryBytes: 16 << 20, MaxBatchBytes: 64 << 20}
}

// Options are the settings common to every backend.
type Options struct {
	Durability Durability
	// SyncInterval is the fsync period for DurabilityInterval (default 100 ms).
	SyncInterval time.Duration
	Limits       Limits
}

// DefaultOptions returns a fresh Options value with the defaults.
func DefaultOptions() Options {
	return Options{Durability: DurabilityNone, SyncInterval: 100 * time.Millisecond, Limits: DefaultLimits()}
}

// Validate reports the first field outside its allowed range.
func (o Options) Validate() error {
	if _, err := ParseDurability(string(o.Durability)); err != nil {
		return err
	}
	if o.Durability == DurabilityInterval && o.SyncInterval <= 0 {
		return fmt.Errorf("sync interval %v: must be > 0 with durability interval: %w", o.SyncInterval, ErrInvalidArgument)
	}
	if o.Limits.MaxEntryBytes <= 0 || o.Limits.MaxBatchBytes < o.Limits.MaxEntryBytes {
		return fmt.Errorf("limits %+v: need 0 < MaxEntryBytes <= MaxBatchBytes: %w", o.Limits, ErrInvalidArgument)
	}
	return nil
}

// CheckBatch validates a batch against the limits, the way every backend must
// before it writes anything.
func (l Limits) CheckBatch(entries [][]byte) error {
	if len(entries) == 0 {
		return fmt.Errorf("append of an empty batch: %w", ErrInvalidArgument)
	}
	total := 0
	for i, e := range entries {
		if len(e) > l.MaxEntryBytes {
			return fmt.Errorf("entry %d is %d bytes, over the %d-byte limit: %w", i, len(e), l.MaxEntryBytes, ErrInvalidArgument)
		}
		total += len(e)
	}
	if total > l.MaxBatchBytes {
		return fmt.Errorf("batch is %d bytes, over the %d-byte limit: %w", total, l.MaxBatchBytes, ErrInvalidArgument)
	}
	return nil
}

// CheckReadBounds validates the bounds of a Read.
func CheckReadBounds(maxEntries, maxBytes int) error {
	if maxEntries < 1 || maxBytes < 1 {
		return fmt.Errorf("read bounds maxEntries=%d maxBytes=%d: both must be >= 1: %w", maxEntries, maxBytes, ErrInvalidArgument)
	}
	return nil
}

// ValidateTopic accepts a topic name that is safe as one file-name component
// and as one word of the client protocol: 1..MaxTopicBytes bytes of valid
// UTF-8, not "." or "..", with no '/', '\\', NUL, control or white-space
// characters.
func ValidateTopic(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("topic name is empty: %w", ErrInvalidName)
	case len(name) > MaxTopicBytes:
		return fmt.Errorf("topic name is %d bytes, over the %d-byte limit: %w", len(name), MaxTopicBytes, ErrInvalidName)
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is reserved: %w", name, ErrInvalidName)
	case !utf8.ValidString(name):
		return fmt.Errorf("topic name is not valid UTF-8: %w", ErrInvalidName)
	}
	for _, r := range name {
		if r == '/' || r == '\\' || r == 0 || unicode.IsControl(r) || unicode.IsSpace(r) {
			return fmt.Errorf("topic name %q contains %q (no '/', '\\', NUL, control or space characters): %w", name, r, ErrInvalidName)
		}
	}
	return nil
}
