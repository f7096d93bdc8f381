package wire

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrDiskFull: the node's data directory's file system has less free
// space than storage.min_free_bytes / min_free_percent; appends are
// refused until space is freed. Not retried: the client sees it.
var ErrDiskFull = errors.New("disk full")

// DiskFullError is ErrDiskFull with the node and its numbers. Its text is
// what a client's PUT answers after "ERR ", with IEC sizes (B, KiB, MiB,
// GiB, TiB; one decimal past B). Across the wire only the text travels:
// FromRPC parses it back, so the sizes of a remote error are rounded to
// what the text shows.
type DiskFullError struct {
	Node          uint64
	FreeBytes     uint64
	RequiredBytes uint64
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("disk full on node %d: %s free, %s required", e.Node, FormatBytes(e.FreeBytes), FormatBytes(e.RequiredBytes))
}

func (e *DiskFullError) Unwrap() error { return ErrDiskFull }

var byteUnits = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}

// FormatBytes writes n in IEC units: "512 B", "3.2 MiB".
func FormatBytes(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	v, u := float64(n), 0
	for v >= 1024 && u < len(byteUnits)-1 {
		v /= 1024
		u++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + byteUnits[u]
}

// parseBytes reverses FormatBytes (to the precision it shows).
func parseBytes(s string) (uint64, bool) {
	num, unit, ok := strings.Cut(s, " ")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	for i, u := range byteUnits {
		if u == unit {
			b := math.Round(v * math.Pow(1024, float64(i)))
			if b >= math.MaxUint64 {
				return 0, false
			}
			return uint64(b), true
		}
	}
	return 0, false
}

// parseDiskFull reads a DiskFullError back from its text.
func parseDiskFull(msg string) (*DiskFullError, bool) {
	rest, ok := strings.CutPrefix(msg, "disk full on node ")
	if !ok {
		return nil, false
	}
	id, rest, ok := strings.Cut(rest, ": ")
	if !ok {
		return nil, false
	}
	free, rest, ok := strings.Cut(rest, " free, ")
	if !ok {
		return nil, false
	}
	req, ok := strings.CutSuffix(rest, " required")
	if !ok {
		return nil, false
	}
	e := &DiskFullError{}
	var err error
	if e.Node, err = strconv.ParseUint(id, 10, 64); err != nil {
		return nil, false
	}
	if e.FreeBytes, ok = parseBytes(free); !ok {
		return nil, false
	}
	if e.RequiredBytes, ok = parseBytes(req); !ok {
		return nil, false
	}
	return e, true
}
