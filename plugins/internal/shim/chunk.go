package shim

import (
	"fmt"
	"math"

	"github.com/walrus-go/walrus/engine"
)

const (
	// ChunkBytes is the most payload one message carries. Far below gRPC's
	// default 4 MiB receive limit, big enough that per-message overhead is
	// noise.
	ChunkBytes = 1 << 20
	// chunkSizesMax is the most entry lengths one message carries (4 bytes
	// each at most on the wire), so a batch of many empty entries is split
	// too.
	chunkSizesMax = 64 << 10
	// MaxBatchEntries bounds the entry count of one Append or Read crossing
	// the boundary; the receiver refuses larger announced totals before it
	// allocates.
	MaxBatchEntries = 1 << 20
)

// chunker cuts a list of entries into chunks (sizes + data) and hands each
// to emit. Entries larger than ChunkBytes are split across chunks; the
// receiver only ever concatenates.
type chunker struct {
	maxData   int
	remaining int // payload bytes not yet copied into a chunk
	sizes     []uint32
	data      []byte
	emit      func(sizes []uint32, data []byte) error
	emitted   int
}

// newChunker prepares to send totalBytes of payload.
func newChunker(totalBytes int, emit func(sizes []uint32, data []byte) error) *chunker {
	return &chunker{maxData: ChunkBytes, remaining: totalBytes, emit: emit}
}

func (c *chunker) flush() error {
	sizes, data := c.sizes, c.data
	// The next chunk gets fresh buffers (allocated when needed, sized to
	// what is left): the message handed to emit must not change under the
	// transport.
	c.sizes, c.data = nil, nil
	c.emitted++
	return c.emit(sizes, data)
}

func (c *chunker) add(e []byte) error {
	if uint64(len(e)) > math.MaxUint32 {
		return fmt.Errorf("entry of %d bytes cannot cross the plugin boundary: %w", len(e), engine.ErrInvalidArgument)
	}
	if len(c.sizes) == chunkSizesMax {
		if err := c.flush(); err != nil {
			return err
		}
	}
	c.sizes = append(c.sizes, uint32(len(e)))
	for len(e) > 0 {
		if len(c.data) == c.maxData {
			if err := c.flush(); err != nil {
				return err
			}
		}
		if c.data == nil {
			c.data = make([]byte, 0, min(max(c.remaining, len(e)), c.maxData))
		}
		n := min(c.maxData-len(c.data), len(e))
		c.data = append(c.data, e[:n]...)
		e = e[n:]
		c.remaining -= n
	}
	return nil
}

// close emits what is pending; it always emits at least one chunk so the
// receiver learns the totals even for an empty result.
func (c *chunker) close() error {
	if len(c.sizes) > 0 || len(c.data) > 0 || c.emitted == 0 {
		return c.flush()
	}
	return nil
}

// assembler rebuilds the entries of one call from its chunks, checking every
// announced and received length against the totals and the bounds given.
type assembler struct {
	totalEntries uint64
	totalBytes   uint64
	sizes        []uint32
	data         []byte
}

// newAssembler checks the announced totals against maxEntries and maxBytes
// before allocating room for them.
func newAssembler(totalEntries, totalBytes, maxEntries, maxBytes uint64) (*assembler, error) {
	if totalEntries > maxEntries || totalEntries > MaxBatchEntries {
		return nil, fmt.Errorf("announced %d entries, over the limit of %d", totalEntries, min(maxEntries, MaxBatchEntries))
	}
	if totalBytes > maxBytes {
		return nil, fmt.Errorf("announced %d bytes, over the limit of %d", totalBytes, maxBytes)
	}
	return &assembler{totalEntries: totalEntries, totalBytes: totalBytes}, nil
}

func (a *assembler) add(sizes []uint32, data []byte) error {
	if uint64(len(a.sizes))+uint64(len(sizes)) > a.totalEntries {
		return fmt.Errorf("received more than the %d entries announced", a.totalEntries)
	}
	if uint64(len(a.data))+uint64(len(data)) > a.totalBytes {
		return fmt.Errorf("received more than the %d bytes announced", a.totalBytes)
	}
	if a.sizes == nil && uint64(len(sizes)) == a.totalEntries {
		a.sizes = sizes // the common single-chunk case: keep, do not copy
	} else {
		if a.sizes == nil {
			a.sizes = make([]uint32, 0, a.totalEntries)
		}
		a.sizes = append(a.sizes, sizes...)
	}
	if a.data == nil && uint64(len(data)) == a.totalBytes {
		a.data = data
	} else {
		if a.data == nil {
			a.data = make([]byte, 0, a.totalBytes)
		}
		a.data = append(a.data, data...)
	}
	return nil
}

// finish checks the totals were met and splits the data into entries. Each
// entry is a sub-slice with its capacity cut to its length, so a caller that
// appends to one cannot overwrite the next.
func (a *assembler) finish() ([][]byte, error) {
	if uint64(len(a.sizes)) != a.totalEntries || uint64(len(a.data)) != a.totalBytes {
		return nil, fmt.Errorf("stream ended after %d of %d entries and %d of %d bytes",
			len(a.sizes), a.totalEntries, len(a.data), a.totalBytes)
	}
	entries := make([][]byte, len(a.sizes))
	var off uint64
	for i, n := range a.sizes {
		end := off + uint64(n)
		if end > uint64(len(a.data)) {
			return nil, fmt.Errorf("entry %d ends at byte %d, past the %d bytes received", i, end, len(a.data))
		}
		entries[i] = a.data[off:end:end]
		off = end
	}
	if off != uint64(len(a.data)) {
		return nil, fmt.Errorf("entry lengths sum to %d, but %d bytes were received", off, len(a.data))
	}
	return entries, nil
}
