package enginetest

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// The child reports on file descriptor 3 (its first ExtraFiles entry) one
// fixed-size record per acknowledged append or seal. A record is far below
// PIPE_BUF and goes out in one write, so a kill never leaves half a record
// that decodes.
const (
	crashAckFD    = 3
	crashAckBytes = 32
)

type crashAckKind uint64

const (
	crashAckAppend crashAckKind = 1 // count entries acknowledged
	crashAckSeal   crashAckKind = 2 // sealed with count entries
)

type crashAck struct {
	writer  uint64
	segment uint64
	count   uint64
	kind    crashAckKind
}

func (a crashAck) encode() [crashAckBytes]byte {
	var b [crashAckBytes]byte
	binary.LittleEndian.PutUint64(b[0:], a.writer)
	binary.LittleEndian.PutUint64(b[8:], a.segment)
	binary.LittleEndian.PutUint64(b[16:], a.count)
	binary.LittleEndian.PutUint64(b[24:], uint64(a.kind))
	return b
}

func decodeCrashAck(b [crashAckBytes]byte) (crashAck, error) {
	a := crashAck{
		writer:  binary.LittleEndian.Uint64(b[0:]),
		segment: binary.LittleEndian.Uint64(b[8:]),
		count:   binary.LittleEndian.Uint64(b[16:]),
		kind:    crashAckKind(binary.LittleEndian.Uint64(b[24:])),
	}
	if a.writer >= CrashWritersMax || (a.kind != crashAckAppend && a.kind != crashAckSeal) {
		return a, fmt.Errorf("bad ack record %x", b)
	}
	return a, nil
}

// crashChild is the child process's side of Crash: it appends until it is
// killed. It fails the test (and so exits the process before the parent
// kills it) on any error, which the parent reports with the child's output.
func crashChild(t *testing.T, h CrashHarness, dir string, mode engine.Durability) {
	opts := engine.DefaultOptions()
	opts.Durability = mode
	s, err := h.Open(t, dir, opts)
	if err != nil {
		t.Fatalf("crash child: open %s: %v", dir, err)
	}
	// The store is never closed: the parent kills this process. The lifetime
	// bounds an orphan whose parent died without killing it.
	ctx, cancel := context.WithTimeout(t.Context(), crashFirstAckTimeout+h.KillAfterMax+10*time.Second)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	acks := os.NewFile(crashAckFD, "acks")
	var mu sync.Mutex
	ack := func(a crashAck) error {
		b := a.encode()
		mu.Lock()
		defer mu.Unlock()
		_, err := acks.Write(b[:])
		return err
	}
	errs := make(chan error, h.Writers)
	for w := range h.Writers {
		wg.Go(func() { errs <- crashWrite(ctx, s, h, w, ack) })
	}
	t.Fatalf("crash child: %v", <-errs)
}

// crashWrite is one writer of the child: it continues its topic where the
// previous child left it and appends until ctx ends or something fails.
func crashWrite(ctx context.Context, s engine.SegmentStore, h CrashHarness, w int, ack func(crashAck) error) error {
	id := engine.SegmentID{Topic: crashTopic(w)}
	list, err := s.List(ctx, id.Topic)
	if err != nil {
		return fmt.Errorf("list %s: %w", id.Topic, err)
	}
	var count uint64
	if len(list) > 0 {
		last := list[len(list)-1]
		id.Segment, count = last.ID.Segment, last.Entries
		if last.Sealed {
			id.Segment, count = id.Segment+1, 0
		}
	}
	for {
		if count > 0 && h.Seal(id, count) {
			if _, err := s.Seal(ctx, id); err != nil {
				return fmt.Errorf("seal %s at %d entries: %w", id, count, err)
			}
			if err := ack(crashAck{writer: uint64(w), segment: id.Segment, count: count, kind: crashAckSeal}); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
			id.Segment, count = id.Segment+1, 0
			continue
		}
		n := h.BatchEntries(id, count)
		if n < 1 {
			return fmt.Errorf("CrashHarness.BatchEntries(%s, %d) = %d, want >= 1", id, count, n)
		}
		batch := make([][]byte, n)
		for i := range batch {
			batch[i] = h.Entry(id, count+uint64(i))
		}
		first, err := s.Append(ctx, id, batch)
		if err != nil {
			return fmt.Errorf("append %d entries to %s at %d: %w", n, id, count, err)
		}
		if first != count {
			return fmt.Errorf("append to %s returned first offset %d, want %d", id, first, count)
		}
		count += uint64(n)
		if err := ack(crashAck{writer: uint64(w), segment: id.Segment, count: count, kind: crashAckAppend}); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
	}
}
