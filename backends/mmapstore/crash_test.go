package mmapstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// The crash test re-executes this test binary as a child that appends in a
// loop and reports every acknowledged append on a pipe; the parent kills it
// with SIGKILL at a random moment, reopens the directory and checks that
// every acknowledged entry is there, byte for byte, that nothing corrupt is
// returned, and that the child's next run continues at the right offsets.

const (
	envCrashDir        = "MMAPSTORE_CRASH_CHILD_DIR"
	envCrashDurability = "MMAPSTORE_CRASH_CHILD_DURABILITY"
	crashWriters       = 3
	crashAckLen        = 24
	crashSealedBit     = 1 << 63
)

func crashTopic(w int) string { return fmt.Sprintf("crash%d", w) }

// TestCrashChild is the child side; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("helper process for TestCrashKill")
	}
	d, err := engine.ParseDurability(os.Getenv(envCrashDurability))
	if err != nil {
		crashChildFail("%v", err)
	}
	o := DefaultOptions()
	o.Store.Durability = d
	o.Store.SyncInterval = 5 * time.Millisecond
	o.SegmentFileBytes = 16 << 10 // small: appends often grow and remap the file
	s, err := Open(dir, o)
	if err != nil {
		crashChildFail("open: %v", err)
	}
	acks := os.NewFile(3, "acks")
	var mu sync.Mutex
	ack := func(w int, seg, count uint64) {
		var rec [crashAckLen]byte
		binary.LittleEndian.PutUint64(rec[0:], uint64(w))
		binary.LittleEndian.PutUint64(rec[8:], seg)
		binary.LittleEndian.PutUint64(rec[16:], count)
		mu.Lock()
		defer mu.Unlock()
		if _, err := acks.Write(rec[:]); err != nil {
			crashChildFail("ack: %v", err)
		}
	}
	ctx := context.Background()
	for w := range crashWriters {
		go func() {
			topic := crashTopic(w)
			list, err := s.List(ctx, topic)
			if err != nil {
				crashChildFail("list: %v", err)
			}
			id := engine.SegmentID{Topic: topic}
			next := uint64(0)
			if len(list) > 0 {
				last := list[len(list)-1]
				id.Segment, next = last.ID.Segment, last.Entries
				if last.Sealed {
					id.Segment, next = id.Segment+1, 0
				}
			}
			rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(w)))
			for {
				batch := make([][]byte, 1+rng.IntN(20))
				for i := range batch {
					batch[i] = entryFor(id, next+uint64(i))
				}
				first, err := s.Append(ctx, id, batch)
				if err != nil || first != next {
					crashChildFail("append %s: got first %d, want %d: %v", id, first, next, err)
				}
				next += uint64(len(batch))
				ack(w, id.Segment, next)
				if rng.IntN(100) == 0 {
					if _, err := s.Seal(ctx, id); err != nil {
						crashChildFail("seal %s: %v", id, err)
					}
					ack(w, id.Segment|crashSealedBit, next)
					id.Segment, next = id.Segment+1, 0
				}
			}
		}()
	}
	select {} // until killed
}

func crashChildFail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "crash child: "+format+"\n", args...)
	os.Exit(3)
}

// crashState is what the parent knows was acknowledged.
type crashState struct {
	log    *bytes.Buffer // the parent's recovery log
	acked  map[engine.SegmentID]uint64
	sealed map[engine.SegmentID]uint64
}

func TestCrashKill(t *testing.T) {
	const (
		minCycles = 8
		maxCycles = 40
		budget    = 12 * time.Second
	)
	dir := t.TempDir()
	var recoveryLog bytes.Buffer
	st := crashState{log: &recoveryLog, acked: map[engine.SegmentID]uint64{}, sealed: map[engine.SegmentID]uint64{}}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	modes := []engine.Durability{engine.DurabilityNone, engine.DurabilityAlways, engine.DurabilityInterval}
	start := time.Now()
	cycles := 0
	for cycles < maxCycles && (cycles < minCycles || time.Since(start) < budget) {
		mode := modes[cycles%len(modes)]
		delay := time.Duration(5+rng.IntN(80)) * time.Millisecond
		n := runCrashChild(t, dir, mode, delay, &st)
		cycles++
		verifyCrashState(t, dir, &st, fmt.Sprintf("cycle %d (%s, killed %v after the first ack, %d acks)", cycles, mode, delay, n))
	}
	total := uint64(0)
	for _, n := range st.acked {
		total += n
	}
	torn := bytes.Count(recoveryLog.Bytes(), []byte("truncated torn tail"))
	removed := bytes.Count(recoveryLog.Bytes(), []byte("removed segment with no complete batch"))
	t.Logf("%d kill cycles in %v; %d segments, %d acknowledged entries verified; recovery cut %d torn tails and removed %d segments with no whole batch",
		cycles, time.Since(start).Round(time.Millisecond), len(st.acked), total, torn, removed)
	if bytes.Contains(recoveryLog.Bytes(), []byte("corrupt")) {
		t.Fatalf("recovery reported corruption after plain process kills:\n%s", recoveryLog.String())
	}
}

// runCrashChild runs one child until delay after its first ack, SIGKILLs it
// and folds every ack it reported into st. It returns the number of acks.
func runCrashChild(t *testing.T, dir string, mode engine.Durability, delay time.Duration, st *crashState) int {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashDurability+"="+string(mode))
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	first := make(chan struct{})
	type ackRec struct{ w, seg, count uint64 }
	var recs []ackRec
	readDone := make(chan error, 1)
	go func() {
		var buf [crashAckLen]byte
		for {
			if _, err := io.ReadFull(r, buf[:]); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				readDone <- err
				return
			}
			if len(recs) == 0 {
				close(first)
			}
			recs = append(recs, ackRec{binary.LittleEndian.Uint64(buf[0:]), binary.LittleEndian.Uint64(buf[8:]), binary.LittleEndian.Uint64(buf[16:])})
		}
	}()
	exited := make(chan error, 1)
	select {
	case <-first:
	case err := <-readDone:
		cmd.Wait()
		t.Fatalf("child ended before its first ack (%v): %s", err, stderr.String())
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no ack from the child within 20s: %s", stderr.String())
	}
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("child exited by itself (%v): %s", err, stderr.String())
	case <-time.After(delay): // the random kill point
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill: %v", err)
	}
	err = <-exited
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL (%v): %s", err, stderr.String())
	}
	if err := <-readDone; err != nil {
		t.Fatalf("reading acks: %v", err)
	}
	for _, a := range recs {
		id := engine.SegmentID{Topic: crashTopic(int(a.w)), Segment: a.seg &^ crashSealedBit}
		if a.seg&crashSealedBit != 0 {
			st.sealed[id] = a.count
		}
		st.acked[id] = max(st.acked[id], a.count)
	}
	return len(recs)
}

func verifyCrashState(t *testing.T, dir string, st *crashState, what string) {
	t.Helper()
	o := DefaultOptions()
	o.SegmentFileBytes = 16 << 10
	o.Logger = slog.New(slog.NewTextHandler(st.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("%s: reopen: %v", what, err)
	}
	defer s.Close()
	list, err := s.List(t.Context(), "")
	if err != nil {
		t.Fatalf("%s: list: %v", what, err)
	}
	present := map[engine.SegmentID]engine.SegmentInfo{}
	for _, info := range list {
		present[info.ID] = info
		// Every entry present, acknowledged or not, is whole and exact.
		verifyAll(t, s, info.ID, info.Entries)
	}
	for id, n := range st.acked {
		info, ok := present[id]
		if !ok || info.Entries < n {
			t.Fatalf("%s: %s has %d entries (present %v), but %d were acknowledged", what, id, info.Entries, ok, n)
		}
		if want, sealed := st.sealed[id]; sealed && (!info.Sealed || info.Entries != want) {
			t.Fatalf("%s: %s = %+v, acknowledged sealed at %d", what, id, info, want)
		}
	}
}
