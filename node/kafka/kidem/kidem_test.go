package kidem

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/record"
)

// log is a partition log in memory: what rebuilds read.
type log struct {
	recs    []Record
	next    int64
	settled bool
	scans   int
}

var _ Source = (*log)(nil)

func (l *log) Scan(context.Context, string) ([]Record, error) {
	l.scans++
	return append([]Record(nil), l.recs...), nil
}

func (l *log) Settled(context.Context, string, uint64) (bool, error) { return l.settled, nil }

// store appends b's records, as the segment leader does.
func (l *log) store(b Batch) int64 {
	base := l.next
	for i := range b.Count {
		l.recs = append(l.recs, Record{Producer: b.Producer, Epoch: b.Epoch, Seq: record.SeqAdd(b.First, int64(i)), Offset: l.next})
		l.next++
	}
	return base
}

// produce runs one batch through the table like the listener: check,
// append if accepted, report.
func produce(t *testing.T, tb *Table, l *log, seg uint64, b Batch) Outcome {
	t.Helper()
	out, err := tb.Begin(context.Background(), "t", seg, b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Ticket != nil {
		base := l.store(b)
		tb.Done(out.Ticket, base, true)
		out.Base = base
	}
	return out
}

func TestSequenceRules(t *testing.T) {
	const p = 7
	type step struct {
		b       Batch
		code    int16
		dup     bool
		base    int64
		comment string
	}
	steps := []step{
		{Batch{p, 0, 0, 3}, 0, false, 0, "new producer from 0"},
		{Batch{p, 0, 3, 2}, 0, false, 3, "the next batch"},
		{Batch{p, 0, 0, 3}, 0, true, 0, "retry of the first batch"},
		{Batch{p, 0, 3, 2}, 0, true, 3, "retry of the second"},
		{Batch{p, 0, 1, 2}, 0, true, 1, "inside a stored run"},
		{Batch{p, 0, 9, 1}, ErrOutOfOrder, false, 0, "a gap"},
		{Batch{p, 0, 4, 3}, ErrOutOfOrder, false, 0, "overlapping the end"},
		{Batch{99, 0, 5, 1}, ErrUnknownProducer, false, 0, "unknown producer not at 0"},
		{Batch{p, 1, 2, 1}, ErrOutOfOrder, false, 0, "new epoch not from 0"},
		{Batch{p, 1, 0, 1}, 0, false, 5, "new epoch from 0"},
		{Batch{p, 0, 5, 1}, ErrInvalidEpoch, false, 0, "older epoch"},
		{Batch{p, 1, 1, 1}, 0, false, 6, "go on in the new epoch"},
	}
	l := &log{}
	tb := NewTable(l)
	for _, s := range steps {
		out := produce(t, tb, l, 1, s.b)
		if out.Code != s.code || out.Dup != s.dup || (s.code == 0 && out.Base != s.base) {
			t.Fatalf("%s: %+v, want code %d dup %v base %d", s.comment, out, s.code, s.dup, s.base)
		}
	}
	if l.next != 7 {
		t.Fatalf("%d records stored, want 7", l.next)
	}
}

// A batch older than the remembered runs is answered as a duplicate
// without an offset (DUPLICATE_SEQUENCE_NUMBER).
func TestOldBatchBeyondRuns(t *testing.T) {
	l := &log{}
	tb := NewTable(l)
	other := int64(8)
	for i := range int32(MaxRuns + 2) {
		produce(t, tb, l, 1, Batch{1, 0, i, 1})
		produce(t, tb, l, 1, Batch{other, 0, i, 1}) // keeps producer 1's runs apart
	}
	if out := produce(t, tb, l, 1, Batch{1, 0, 0, 1}); out.Code != ErrDuplicateSequence || !out.Dup {
		t.Fatalf("old batch: %+v", out)
	}
}

// Sequences wrap after MaxInt32 to 0.
func TestSequenceWrap(t *testing.T) {
	l := &log{}
	tb := NewTable(l)
	produce(t, tb, l, 1, Batch{1, 0, 0, 1})
	tb.parts["t"].producers[1].last = math.MaxInt32 - 1
	if out := produce(t, tb, l, 1, Batch{1, 0, math.MaxInt32, 1}); out.Code != 0 || out.Dup {
		t.Fatalf("last sequence: %+v", out)
	}
	if out := produce(t, tb, l, 1, Batch{1, 0, 0, 2}); out.Code != 0 || out.Dup {
		t.Fatalf("wrapped: %+v", out)
	}
}

// A new segment (a rollover, or this node taking over after the old
// leader died) rebuilds the state from the log: a batch the old leader
// stored is a duplicate with its offset, one it lost is stored.
func TestRebuildOnNewSegment(t *testing.T) {
	l := &log{}
	old := NewTable(l)
	produce(t, old, l, 1, Batch{5, 2, 0, 4})
	produce(t, old, l, 1, Batch{5, 2, 4, 4}) // acked by the old leader; its answer was lost
	l.store(Batch{6, 0, 0, 1})               // another producer in between

	tb := NewTable(l) // the new leader
	if out := produce(t, tb, l, 2, Batch{5, 2, 4, 4}); !out.Dup || out.Base != 4 || out.Code != 0 {
		t.Fatalf("retry on the new leader: %+v", out)
	}
	if out := produce(t, tb, l, 2, Batch{5, 2, 8, 2}); out.Dup || out.Code != 0 || out.Base != 9 {
		t.Fatalf("next batch on the new leader: %+v", out)
	}
	// A batch the old leader never got stored (truncated away) is taken.
	l2 := &log{recs: l.recs[:4], next: 4}
	tb2 := NewTable(l2)
	if out := produce(t, tb2, l2, 3, Batch{5, 2, 4, 4}); out.Dup || out.Code != 0 || out.Base != 4 {
		t.Fatalf("lost batch retried: %+v", out)
	}
	scans := l.scans
	produce(t, tb, l, 4, Batch{5, 2, 10, 1}) // rollover to segment 4 here
	if l.scans != scans+1 {
		t.Fatal("a new segment did not rebuild the state")
	}
}

// A failed append makes the next batch wait until the segment's appends
// are settled, then rebuild from the log; a retry of a pending batch waits
// for it.
func TestFailedAppendAndPendingRetry(t *testing.T) {
	l := &log{settled: true}
	tb := NewTable(l)
	ctx := context.Background()
	produce(t, tb, l, 1, Batch{1, 0, 0, 1})
	out, err := tb.Begin(ctx, "t", 1, Batch{1, 0, 1, 1})
	if err != nil || out.Ticket == nil {
		t.Fatalf("accept: %+v %v", out, err)
	}
	// The same batch again while the first is pending waits for it.
	got := make(chan Outcome, 1)
	go func() {
		o, _ := tb.Begin(ctx, "t", 1, Batch{1, 0, 1, 1})
		got <- o
	}()
	select {
	case o := <-got:
		t.Fatalf("a retry of a pending batch did not wait: %+v", o)
	case <-time.After(50 * time.Millisecond):
	}
	l.settled = false
	tb.Done(out.Ticket, -1, false) // the append failed; nothing stored
	if o := <-got; o.Code != ErrNotLeader {
		t.Fatalf("retry while the failed append is unsettled: %+v", o)
	}
	l.settled = true
	if o := produce(t, tb, l, 1, Batch{1, 0, 1, 1}); o.Code != 0 || o.Dup || o.Base != 1 {
		t.Fatalf("retry once settled: %+v", o)
	}

	cctx, cancel := context.WithCancel(ctx)
	out, _ = tb.Begin(ctx, "t", 1, Batch{1, 0, 2, 1})
	cancel()
	if o, err := tb.Begin(cctx, "t", 1, Batch{1, 0, 2, 1}); !errors.Is(err, context.Canceled) || o.Code != ErrNotLeader {
		t.Fatalf("waiting with a cancelled context: %+v %v", o, err)
	}
	tb.Done(out.Ticket, l.store(Batch{1, 0, 2, 1}), true)
}

// The producers of one partition are bounded; the least recently used is
// forgotten and starts over as unknown.
func TestProducersBounded(t *testing.T) {
	l := &log{}
	tb := NewTable(l)
	for id := range int64(MaxProducers + 1) {
		produce(t, tb, l, 1, Batch{id + 1, 0, 0, 1})
	}
	if n := len(tb.parts["t"].producers); n != MaxProducers {
		t.Fatalf("%d producers kept", n)
	}
	if out := produce(t, tb, l, 1, Batch{1, 0, 1, 1}); out.Code != ErrUnknownProducer {
		t.Fatalf("forgotten producer: %+v", out)
	}
}
