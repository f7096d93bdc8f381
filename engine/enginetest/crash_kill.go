package enginetest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// crashState is what the parent knows must survive: the highest count
// acknowledged (or found after an earlier kill) per segment, and the count
// each sealed segment was sealed at.
type crashState struct {
	acked  map[engine.SegmentID]uint64
	sealed map[engine.SegmentID]uint64
}

// crashOutputMax bounds how much of the child's output a failure quotes.
const crashOutputMax = 16 << 10

// tailBuffer keeps the last crashOutputMax bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - crashOutputMax; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// runCrashChild starts a child on dir, lets it run killAfter past its first
// acknowledgement, SIGKILLs it and folds every acknowledgement it sent into
// st. It returns the number of acknowledgements.
func runCrashChild(t *testing.T, dir string, mode engine.Durability, killAfter time.Duration, st *crashState) int {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out tailBuffer
	cmd := exec.Command(os.Args[0], "-test.run="+crashRunPattern(t.Name()), "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvMode+"="+string(mode), crashEnvTest+"="+t.Name())
	cmd.ExtraFiles = []*os.File{w} // crashAckFD in the child
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatal(err)
	}
	w.Close() // the child holds the only write end: EOF once it dies

	first := make(chan struct{})
	var acks []crashAck
	readDone := make(chan error, 1)
	go func() {
		var buf [crashAckBytes]byte
		for {
			if _, err := io.ReadFull(r, buf[:]); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil // io.ErrUnexpectedEOF would be half a record
				}
				readDone <- err
				return
			}
			a, err := decodeCrashAck(buf)
			if err != nil {
				readDone <- err
				return
			}
			if len(acks) == 0 {
				close(first)
			}
			acks = append(acks, a)
		}
	}()
	fail := func(format string, args ...any) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-readDone
		t.Fatalf(format+"\nchild output:\n%s", append(args, out.String())...)
	}
	select {
	case <-first:
	case err := <-readDone:
		readDone <- err
		fail("child ended before its first ack (%v)", err)
	case <-time.After(crashFirstAckTimeout):
		fail("no ack from the child within %v", crashFirstAckTimeout)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	kill := time.NewTimer(killAfter) // the random kill point
	defer kill.Stop()
	select {
	case err := <-exited:
		<-readDone
		t.Fatalf("child exited by itself (%v)\nchild output:\n%s", err, out.String())
	case <-kill.C:
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	err = <-exited
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL (%v)\nchild output:\n%s", err, out.String())
	}
	if err := <-readDone; err != nil {
		t.Fatalf("reading acks: %v", err)
	}
	for _, a := range acks {
		id := engine.SegmentID{Topic: crashTopic(int(a.writer)), Segment: a.segment}
		if a.kind == crashAckSeal {
			st.sealed[id] = a.count
		}
		st.acked[id] = max(st.acked[id], a.count)
	}
	return len(acks)
}

// verifyCrash reopens dir after a kill and checks it against st, then adds
// to st what it found, which later kills must not take back.
func verifyCrash(t *testing.T, h CrashHarness, dir string, st *crashState, what string) {
	t.Helper()
	s, err := h.Reopen(t, dir)
	if err != nil {
		t.Fatalf("%s: reopen: %v", what, err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("%s: close: %v", what, err)
		}
	}()
	list, err := s.List(t.Context(), "")
	if err != nil {
		t.Fatalf("%s: list: %v", what, err)
	}
	present := map[engine.SegmentID]engine.SegmentInfo{}
	for _, info := range list {
		present[info.ID] = info
		// Every segment present, acknowledged or not, holds whole batches
		// of exact entries.
		verifyCrashSegment(t, h, s, info, what)
	}
	for id, n := range st.acked {
		info, ok := present[id]
		if !ok || info.Entries < n {
			t.Fatalf("%s: %s has %d entries (present %v), but %d were acknowledged", what, id, info.Entries, ok, n)
		}
		if want, sealed := st.sealed[id]; sealed && (!info.Sealed || info.Entries != want) {
			t.Fatalf("%s: %s = %+v, acknowledged sealed at %d entries", what, id, info, want)
		}
	}
	for id, info := range present {
		st.acked[id] = max(st.acked[id], info.Entries)
		if info.Sealed {
			st.sealed[id] = info.Entries
		}
	}
}

func verifyCrashSegment(t *testing.T, h CrashHarness, s engine.SegmentStore, info engine.SegmentInfo, what string) {
	t.Helper()
	id := info.ID
	var boundary uint64
	for boundary < info.Entries {
		n := h.BatchEntries(id, boundary)
		if n < 1 {
			t.Fatalf("CrashHarness.BatchEntries(%s, %d) = %d, want >= 1", id, boundary, n)
		}
		boundary += uint64(n)
	}
	if boundary != info.Entries {
		t.Fatalf("%s: %s has %d entries, inside a batch that ends at %d: a batch was torn", what, id, info.Entries, boundary)
	}
	got, err := readFrom(t.Context(), s, id, 0)
	if err != nil {
		t.Fatalf("%s: read %s: %v", what, id, err)
	}
	if uint64(len(got)) != info.Entries {
		t.Fatalf("%s: %s lists %d entries, reads %d", what, id, info.Entries, len(got))
	}
	for off, e := range got {
		if want := h.Entry(id, uint64(off)); !bytes.Equal(e, want) {
			t.Fatalf("%s: %s entry %d differs from what was written: %d bytes %s, want %d bytes %s",
				what, id, off, len(e), preview(e), len(want), preview(want))
		}
	}
	if n := sumBytes(got); n != info.Bytes {
		t.Fatalf("%s: %s lists %d bytes, its entries sum to %d", what, id, info.Bytes, n)
	}
}
