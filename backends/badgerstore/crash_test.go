package badgerstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// The crash test re-executes this test binary as a child that appends in a
// loop and reports every acknowledged append on a pipe; the parent SIGKILLs
// it at a random moment, reopens the directory and checks that every
// acknowledged entry is there and intact, that no batch is torn, and that
// writing continues at the right offset. Several rounds, alternating the
// durability mode (a process crash must lose nothing in any mode).
const (
	crashChildDirEnv        = "BADGERSTORE_CRASH_CHILD_DIR"
	crashChildDurabilityEnv = "BADGERSTORE_CRASH_CHILD_DURABILITY"
	crashTopic              = "crash"
	// crashSegmentEntries is where the child seals a segment and moves on.
	crashSegmentEntries = 4000
	// crashChildLifetime bounds an orphaned child if the parent vanished.
	crashChildLifetime = 30 * time.Second
)

// crashBatchSize is the size of the batch the child appends when the
// segment holds count entries. Being a function of count alone, it lets the
// checker recompute every batch boundary. Every fifth batch is large enough
// to take the split path (several badger transactions).
func crashBatchSize(count uint64) int {
	if count%5 == 3 {
		return 1500 + int(count%700)
	}
	return 1 + int(count%17)
}

// crashEntry is the content of entry offset of segment seg; length and
// bytes depend on both. Most entries are 0..299 bytes (stored in the LSM
// tree); one in 97 is 2000 bytes, above the test ValueThreshold, so the
// value log is crash-tested too.
func crashEntry(seg, offset uint64) []byte {
	n := int((offset*31 + seg*7) % 300)
	if offset%97 == 5 {
		n = 2000 // above the test value threshold: lives in the value log
	}
	e := make([]byte, n)
	var w [16]byte
	binary.BigEndian.PutUint64(w[:8], seg)
	binary.BigEndian.PutUint64(w[8:], offset)
	for i := range e {
		e[i] = w[i%16] ^ byte(i)
	}
	return e
}

func TestCrashKill(t *testing.T) {
	if dir := os.Getenv(crashChildDirEnv); dir != "" {
		crashChild(t, dir, engine.Durability(os.Getenv(crashChildDurabilityEnv)))
		return
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	modes := []engine.Durability{engine.DurabilityNone, engine.DurabilityAlways, engine.DurabilityInterval}
	acked := map[uint64]uint64{} // segment -> entries acknowledged
	sealed := map[uint64]bool{}
	checked := map[uint64]engine.SegmentInfo{} // fully verified, as it was then
	const rounds = 6
	for round := range rounds {
		mode := modes[round%len(modes)]
		killAfter := time.Duration(50+rng.IntN(400)) * time.Millisecond
		n := runCrashChild(t, dir, mode, killAfter, acked, sealed)
		t.Logf("round %d (%s): killed %v after the first ack, %d acks; acked %v", round, mode, killAfter, n, acked)
		verifyCrashDir(t, dir, acked, sealed, checked)
	}
}

// runCrashChild starts the child, waits for its first ack, lets it run for
// killAfter, SIGKILLs it and folds its acks into acked/sealed. It returns
// the number of acks read.
func runCrashChild(t *testing.T, dir string, mode engine.Durability, killAfter time.Duration, acked map[uint64]uint64, sealed map[uint64]bool) int {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildDirEnv+"="+dir, crashChildDurabilityEnv+"="+string(mode))
	cmd.ExtraFiles = []*os.File{w} // fd 3 in the child
	cmd.Stderr = t.Output()
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatal(err)
	}
	w.Close() // the child holds the only write end: EOF once it dies

	first := make(chan struct{})
	var (
		mu    sync.Mutex
		count int
		rerr  error
	)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				if err != io.EOF {
					mu.Lock()
					rerr = err
					mu.Unlock()
				}
				return // a line cut by the kill has no newline and is ignored
			}
			kind, seg, n, perr := parseAck(line)
			mu.Lock()
			switch {
			case perr != nil:
				rerr = perr
			case kind == "A":
				acked[seg] = max(acked[seg], n)
			case kind == "S":
				sealed[seg] = true
			}
			count++
			if count == 1 {
				close(first)
			}
			mu.Unlock()
		}
	}()
	select {
	case <-first:
	case <-readerDone:
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child exited before its first ack")
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("no ack from the child within 20s")
	}
	timer := time.NewTimer(killAfter)
	<-timer.C
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	_ = cmd.Wait() // "signal: killed" is the expected outcome
	<-readerDone
	mu.Lock()
	defer mu.Unlock()
	if rerr != nil {
		t.Fatalf("reading acks: %v", rerr)
	}
	return count
}

func parseAck(line string) (kind string, seg, n uint64, err error) {
	f := strings.Fields(line)
	if len(f) != 3 || (f[0] != "A" && f[0] != "S") {
		return "", 0, 0, fmt.Errorf("bad ack line %q", line)
	}
	if seg, err = strconv.ParseUint(f[1], 10, 64); err == nil {
		n, err = strconv.ParseUint(f[2], 10, 64)
	}
	return f[0], seg, n, err
}

// verifyCrashDir reopens dir and checks it against what the child acked.
func verifyCrashDir(t *testing.T, dir string, acked map[uint64]uint64, sealed map[uint64]bool, checked map[uint64]engine.SegmentInfo) {
	t.Helper()
	s, err := Open(dir, testOptions(t, engine.DefaultOptions()))
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	ctx := t.Context()
	list, err := s.List(ctx, crashTopic)
	if err != nil {
		t.Fatal(err)
	}
	present := map[uint64]engine.SegmentInfo{}
	for _, info := range list {
		present[info.ID.Segment] = info
	}
	for seg, n := range acked {
		info, ok := present[seg]
		if !ok {
			t.Fatalf("segment %d with %d acked entries is missing", seg, n)
		}
		if info.Entries < n {
			t.Fatalf("segment %d has %d entries, %d were acknowledged", seg, info.Entries, n)
		}
		if sealed[seg] && !info.Sealed {
			t.Fatalf("segment %d was sealed (acknowledged) but is open after reopen", seg)
		}
	}
	var last uint64
	for seg := range present {
		last = max(last, seg)
	}
	for seg, info := range present {
		if checked[seg] == info && seg+1 < last {
			// Verified byte by byte in an earlier round and unchanged (a
			// sealed segment): keep each round's cost flat.
			continue
		}
		// The count must fall on a batch boundary: no torn batch.
		var c uint64
		for c < info.Entries {
			c += uint64(crashBatchSize(c))
		}
		if c != info.Entries {
			t.Fatalf("segment %d has %d entries, inside a batch (boundaries ...%d): a batch was torn", seg, info.Entries, c)
		}
		var off, bytesSum uint64
		for off < info.Entries {
			got, err := s.Read(ctx, info.ID, off, 1000, 4<<20)
			if err != nil {
				t.Fatalf("segment %d read at %d: %v", seg, off, err)
			}
			for i, e := range got {
				if want := crashEntry(seg, off+uint64(i)); !bytes.Equal(e, want) {
					t.Fatalf("segment %d entry %d: %d bytes differ from the %d written", seg, off+uint64(i), len(e), len(want))
				}
				bytesSum += uint64(len(e))
			}
			off += uint64(len(got))
		}
		if bytesSum != info.Bytes {
			t.Fatalf("segment %d: stat says %d bytes, entries sum to %d", seg, info.Bytes, bytesSum)
		}
		// Fold entries that were written but whose ack was lost in the
		// kill: the next round continues after them.
		acked[seg] = max(acked[seg], info.Entries)
		if info.Sealed {
			sealed[seg] = true
		}
		checked[seg] = info
	}
}

// crashChild appends until killed, writing "A <segment> <count>" after each
// acknowledged append and "S <segment> <count>" after each seal to fd 3.
func crashChild(t *testing.T, dir string, mode engine.Durability) {
	acks := os.NewFile(3, "acks")
	o := engine.DefaultOptions()
	o.Durability = mode
	s, err := Open(dir, testOptions(t, o))
	if err != nil {
		t.Fatalf("child open: %v", err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), crashChildLifetime)
	defer cancel()
	list, err := s.List(ctx, crashTopic)
	if err != nil {
		t.Fatalf("child list: %v", err)
	}
	var seg, count uint64
	if len(list) > 0 {
		last := list[len(list)-1]
		seg, count = last.ID.Segment, last.Entries
		if last.Sealed {
			seg, count = seg+1, 0
		}
	}
	for ctx.Err() == nil {
		id := engine.SegmentID{Topic: crashTopic, Segment: seg}
		if count >= crashSegmentEntries {
			if _, err := s.Seal(ctx, id); err != nil {
				t.Fatalf("child seal: %v", err)
			}
			fmt.Fprintf(acks, "S %d %d\n", seg, count)
			seg, count = seg+1, 0
			continue
		}
		n := crashBatchSize(count)
		batch := make([][]byte, n)
		for i := range batch {
			batch[i] = crashEntry(seg, count+uint64(i))
		}
		first, err := s.Append(ctx, id, batch)
		if err != nil {
			t.Fatalf("child append: %v", err)
		}
		if first != count {
			t.Fatalf("child append at %d returned %d", count, first)
		}
		count += uint64(n)
		// One write(2) per line, well under PIPE_BUF: a kill never leaves a
		// half line that parses.
		fmt.Fprintf(acks, "A %d %d\n", seg, count)
	}
}
