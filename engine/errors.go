package engine

import "errors"

// Sentinel errors. Backends wrap them with context ("mmapstore: seal logs/3:
// %w") and callers match them with errors.Is; the plugin shim carries them
// across the process boundary so errors.Is holds on the host side too.
var (
	// ErrNotFound: the segment (or topic) does not exist.
	ErrNotFound = errors.New("segment not found")
	// ErrSealed: the segment is sealed and accepts no more appends.
	ErrSealed = errors.New("segment is sealed")
	// ErrClosed: the store was closed; open a new one to continue.
	ErrClosed = errors.New("store is closed")
	// ErrCorrupt: stored bytes failed verification (CRC, framing, index).
	// Corruption is sticky: the affected segment keeps failing until repaired.
	ErrCorrupt = errors.New("stored data is corrupt")
	// ErrOutOfRange: a read offset lies beyond the end of the segment.
	ErrOutOfRange = errors.New("offset out of range")
	// ErrUnavailable: the backend cannot serve right now (plugin process
	// down, disk full, I/O error); the request may succeed later.
	ErrUnavailable = errors.New("storage backend unavailable")
	// ErrInvalidName: a topic name is empty, too long, or could escape the
	// data directory.
	ErrInvalidName = errors.New("invalid topic name")
	// ErrInvalidArgument: an argument is outside the contract (empty batch,
	// entry or batch over Limits, negative bound).
	ErrInvalidArgument = errors.New("invalid argument")
)
