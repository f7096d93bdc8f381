package enginetest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// testParallelSegments writes many segments of several topics at once, one
// writer per segment, with Stat/List running alongside, then checks every
// segment holds exactly what its writer appended.
func testParallelSegments(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	const (
		writers = 12
		batches = 30
	)
	ids := make([]engine.SegmentID, writers)
	for w := range ids {
		ids[w] = engine.SegmentID{Topic: fmt.Sprintf("par-%d", w%4), Segment: uint64(w / 4)}
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	stop := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			next := uint64(0)
			for b := range batches {
				n := 1 + (b*7+w)%8
				first, err := s.Append(t.Context(), ids[w], patternEntries(next, n))
				if err != nil {
					errs <- fmt.Errorf("writer %d append: %w", w, err)
					return
				}
				if first != next {
					errs <- fmt.Errorf("writer %d: append returned offset %d, want %d (single writer per segment)", w, first, next)
					return
				}
				next += uint64(n)
			}
		})
	}
	var observers sync.WaitGroup
	observers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.List(t.Context(), ""); err != nil {
				errs <- fmt.Errorf("list during writes: %w", err)
				return
			}
			if _, err := s.List(t.Context(), "par-1"); err != nil {
				errs <- fmt.Errorf("list topic during writes: %w", err)
				return
			}
		}
	})
	wg.Wait()
	close(stop)
	observers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w, id := range ids {
		total := 0
		for b := range batches {
			total += 1 + (b*7+w)%8
		}
		equalEntries(t, "segment "+id.String(), readAll(t, s, id), patternEntries(0, total))
	}
	list, err := s.List(t.Context(), "")
	if err != nil || len(list) != writers {
		t.Fatalf("list = %d segments, %v; want %d", len(list), err, writers)
	}
}

// sameSegEntry encodes (writer, batch, index) so the checker can tell
// which batch an entry came from.
func sameSegEntry(w, b, i int) []byte {
	e := make([]byte, 12, 12+i)
	binary.BigEndian.PutUint32(e[0:], uint32(w))
	binary.BigEndian.PutUint32(e[4:], uint32(b))
	binary.BigEndian.PutUint32(e[8:], uint32(i))
	return append(e, bytes.Repeat([]byte{byte(w)}, i)...)
}

// testParallelSameSegment has several writers append to ONE segment: the
// store serialises them, so every batch must land contiguously at the
// offset its Append returned and the offsets must tile the segment.
func testParallelSameSegment(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "shared", Segment: 0}
	const (
		writers = 8
		batches = 20
	)
	type placed struct{ w, b, n int }
	var (
		mu    sync.Mutex
		at    = map[uint64]placed{}
		wg    sync.WaitGroup
		errCh = make(chan error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				n := 1 + (w+b)%5
				batch := make([][]byte, n)
				for i := range batch {
					batch[i] = sameSegEntry(w, b, i)
				}
				first, err := s.Append(t.Context(), id, batch)
				if err != nil {
					errCh <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				mu.Lock()
				at[first] = placed{w, b, n}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errCh)
	for err := range errCh {
		t.Fatal(err)
	}
	all := readAll(t, s, id)
	off := uint64(0)
	for off < uint64(len(all)) {
		p, ok := at[off]
		if !ok {
			t.Fatalf("no acknowledged batch starts at offset %d", off)
		}
		for i := range p.n {
			if want := sameSegEntry(p.w, p.b, i); !bytes.Equal(all[off+uint64(i)], want) {
				t.Fatalf("offset %d: got %s, want entry %d of writer %d batch %d", off+uint64(i), preview(all[off+uint64(i)]), i, p.w, p.b)
			}
		}
		off += uint64(p.n)
	}
	if len(at) != writers*batches {
		t.Fatalf("%d batches tile the segment, %d were acknowledged", len(at), writers*batches)
	}
}

// testWriterWithReaders runs one writer appending fixed-size batches and
// several readers that scan the segment the whole time. A reader must only
// ever see whole batches (every time it catches up, the count is a multiple
// of the batch size), every entry it sees must be the right bytes, and it
// must see at least every batch acknowledged before its scan started.
func testWriterWithReaders(t *testing.T, h Harness) {
	s := h.open(t, t.TempDir())
	id := engine.SegmentID{Topic: "rw", Segment: 0}
	const (
		batch   = 4
		batches = 250
		readers = 4
	)
	// Create the segment first so readers never race a not-found.
	mustAppend(t, s, id, patternEntries(0, batch))
	var acked atomic.Uint64
	acked.Store(batch)
	var (
		wg    sync.WaitGroup
		done  = make(chan struct{})
		errCh = make(chan error, readers+1)
	)
	wg.Go(func() {
		defer close(done)
		for b := 1; b < batches; b++ {
			first := uint64(b * batch)
			got, err := s.Append(t.Context(), id, patternEntries(first, batch))
			if err != nil {
				errCh <- fmt.Errorf("writer: %w", err)
				return
			}
			if got != first {
				errCh <- fmt.Errorf("writer: append returned %d, want %d", got, first)
				return
			}
			acked.Store(first + batch)
		}
	})
	for r := range readers {
		wg.Go(func() {
			var prevEnd uint64
			for pass := 0; ; pass++ {
				finished := false
				select {
				case <-done:
					finished = true // one last full scan after the writer stopped
				default:
				}
				floor := acked.Load()
				// Each pass re-reads a little of what the previous one saw
				// and then everything new, so every entry is checked while
				// the cost stays linear; the final pass reads it all.
				off := prevEnd - min(prevEnd, 64)
				if finished {
					off = 0
				}
				for {
					got, err := s.Read(t.Context(), id, off, 1+(r*13+pass)%50, 1+(r*977+pass*31)%2000)
					if err != nil {
						errCh <- fmt.Errorf("reader %d: read at %d: %w", r, off, err)
						return
					}
					if len(got) == 0 {
						break
					}
					for i, e := range got {
						if want := patternEntry(off + uint64(i)); !bytes.Equal(e, want) {
							errCh <- fmt.Errorf("reader %d: offset %d: got %s, want %s", r, off+uint64(i), preview(e), preview(want))
							return
						}
					}
					off += uint64(len(got))
				}
				if off%batch != 0 {
					errCh <- fmt.Errorf("reader %d: caught up at offset %d, inside a batch of %d", r, off, batch)
					return
				}
				if off < floor {
					errCh <- fmt.Errorf("reader %d: caught up at %d but %d entries were acknowledged before the scan", r, off, floor)
					return
				}
				prevEnd = off
				info, err := s.Stat(t.Context(), id)
				if err != nil {
					errCh <- fmt.Errorf("reader %d: stat: %w", r, err)
					return
				}
				if info.Entries%batch != 0 || info.Entries < off {
					errCh <- fmt.Errorf("reader %d: stat says %d entries after a scan reached %d (batch %d)", r, info.Entries, off, batch)
					return
				}
				if finished {
					if off != batches*batch {
						errCh <- fmt.Errorf("reader %d: final scan saw %d entries, want %d", r, off, batches*batch)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	close(errCh)
	for err := range errCh {
		t.Fatal(err)
	}
}
