package enginetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// readAllChunk bounds each Read of readAll; several calls per segment also
// exercise continuing from an offset.
const (
	readAllMaxEntries = 97
	readAllMaxBytes   = 4 << 20
)

func mustAppend(tb testing.TB, s engine.SegmentStore, id engine.SegmentID, entries [][]byte) uint64 {
	tb.Helper()
	first, err := s.Append(tb.Context(), id, entries)
	if err != nil {
		tb.Fatalf("append %d entries to %s: %v", len(entries), id, err)
	}
	return first
}

func mustStat(tb testing.TB, s engine.SegmentStore, id engine.SegmentID) engine.SegmentInfo {
	tb.Helper()
	info, err := s.Stat(tb.Context(), id)
	if err != nil {
		tb.Fatalf("stat %s: %v", id, err)
	}
	return info
}

// readAll reads the whole segment from offset 0 in bounded chunks.
func readAll(tb testing.TB, s engine.SegmentStore, id engine.SegmentID) [][]byte {
	tb.Helper()
	out, err := readFrom(tb.Context(), s, id, 0)
	if err != nil {
		tb.Fatalf("read %s: %v", id, err)
	}
	return out
}

func readFrom(ctx context.Context, s engine.SegmentStore, id engine.SegmentID, offset uint64) ([][]byte, error) {
	var out [][]byte
	for {
		got, err := s.Read(ctx, id, offset, readAllMaxEntries, readAllMaxBytes)
		if err != nil {
			return out, fmt.Errorf("at offset %d: %w", offset, err)
		}
		if len(got) == 0 {
			return out, nil
		}
		out = append(out, got...)
		offset += uint64(len(got))
	}
}

func equalEntries(tb testing.TB, what string, got, want [][]byte) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: got %d entries, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			tb.Fatalf("%s: entry %d differs: got %d bytes %s, want %d bytes %s",
				what, i, len(got[i]), preview(got[i]), len(want[i]), preview(want[i]))
		}
	}
}

func preview(b []byte) string {
	if len(b) > 16 {
		return fmt.Sprintf("%x…", b[:16])
	}
	return fmt.Sprintf("%x", b)
}

func wantErr(tb testing.TB, what string, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("%s: got error %v, want errors.Is(err, %v)", what, err, target)
	}
}

func sumBytes(entries [][]byte) uint64 {
	var n uint64
	for _, e := range entries {
		n += uint64(len(e))
	}
	return n
}

// randomEntries returns n entries of random binary content with lengths in
// [0, maxLen], empty ones included.
func randomEntries(rng *rand.Rand, n, maxLen int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		e := make([]byte, rng.IntN(maxLen+1))
		for j := range e {
			e[j] = byte(rng.Uint32())
		}
		out[i] = e
	}
	return out
}

// patternEntry is the deterministic content of entry offset in the
// concurrency cases: its length varies (0..63 bytes, empty included) and
// every byte depends on the offset, so a reader can verify any entry alone.
func patternEntry(offset uint64) []byte {
	n := int(offset*7) % 64
	e := make([]byte, n)
	for i := range e {
		e[i] = byte(offset>>(8*(i%8))) ^ byte(i*31)
	}
	return e
}

func patternEntries(first uint64, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = patternEntry(first + uint64(i))
	}
	return out
}
