// Package kidem keeps the sequence state of idempotent Kafka producers on
// the segment leader of each partition log, so that a batch a producer
// sends again is stored once. The state is rebuilt from the log itself
// (record.Version3 keeps producer id, epoch and sequence with every
// record) whenever this node starts appending to a new open segment, so
// it survives a rollover and a segment-leader failover: a batch acked by
// the old leader's quorum is in the sealed segment the new leader reads;
// one that was not is not, and its retry is stored.
//
// Kafka's rules, per partition and producer: sequences go up by one per
// record from 0 in each epoch; a batch that is exactly the next one is
// stored; a batch already stored is answered with the offset it got
// (Kafka remembers five batches; here eight runs of consecutive records);
// a batch from a newer epoch starts at 0; anything else is
// OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch INVALID_PRODUCER_EPOCH, and
// a producer not in the state (new here with a sequence other than 0, or
// idle beyond the rebuild window) UNKNOWN_PRODUCER_ID: clients then take
// a new epoch and go on.
package kidem

import (
	"context"
	"sync"

	"github.com/walrus-go/walrus/node/record"
)

// Bounds. State beyond them is forgotten, which is safe: a forgotten
// partition is rebuilt from the log, a forgotten producer answers
// UNKNOWN_PRODUCER_ID and starts a new epoch.
const (
	MaxRuns       = 8
	MaxProducers  = 1024
	MaxPartitions = 4096
	// RebuildRecords is how far back from the end a rebuild reads a log.
	RebuildRecords = 100_000
)

// Kafka error codes answered.
const (
	ErrNotLeader         int16 = 6  // NOT_LEADER_OR_FOLLOWER: retry after a metadata refresh
	ErrOutOfOrder        int16 = 45 // OUT_OF_ORDER_SEQUENCE_NUMBER
	ErrDuplicateSequence int16 = 46 // DUPLICATE_SEQUENCE_NUMBER: stored long ago
	ErrInvalidEpoch      int16 = 47 // INVALID_PRODUCER_EPOCH
	ErrUnknownProducer   int16 = 59 // UNKNOWN_PRODUCER_ID
)

// Batch is one idempotent produce batch.
type Batch struct {
	Producer int64
	Epoch    int16
	First    int32 // sequence of its first record
	Count    int32
}

func (b Batch) last() int32 { return record.SeqAdd(b.First, int64(b.Count)-1) }

// Record is one idempotent record found in the log by a rebuild.
type Record struct {
	Producer int64
	Epoch    int16
	Seq      int32
	Offset   int64
}

// Source is what a rebuild reads (LogSource over the node's logs).
type Source interface {
	// Scan returns the idempotent records of the end of log, in offset
	// order, at most RebuildRecords back.
	Scan(ctx context.Context, log string) ([]Record, error)
	// Settled reports whether every append this node made to segment
	// seg of log is resolved (readable or gone), so a rebuild sees all
	// of them.
	Settled(ctx context.Context, log string, seg uint64) (bool, error)
}

// run is consecutive records of one producer at consecutive offsets.
type run struct {
	first, last int32
	offset      int64         // of first; -1 while pending
	done        chan struct{} // closed when a pending run is resolved
	failed      bool
}

type producer struct {
	epoch int16
	last  int32 // sequence of the last record accepted
	runs  []*run
	used  uint64
}

type partition struct {
	mu        sync.Mutex
	segment   uint64
	ready     bool
	broken    bool // an append failed: rebuild once settled
	inflight  int
	tick      uint64
	producers map[int64]*producer
}

// Table is the state of every partition led here.
type Table struct {
	src   Source
	mu    sync.Mutex
	parts map[string]*partition
}

// NewTable returns an empty table that rebuilds from src.
func NewTable(src Source) *Table { return &Table{src: src, parts: map[string]*partition{}} }

// Ticket is an accepted batch; Done must be called with its result.
type Ticket struct {
	p  *partition
	pr *producer
	r  *run
}

// Outcome is Begin's answer: Code != 0 refuses the batch; Dup means it is
// stored already, at Base (-1: long ago, the offset is not remembered);
// otherwise Ticket says go on and append.
type Outcome struct {
	Code   int16
	Dup    bool
	Base   int64
	Ticket *Ticket
}

func (t *Table) partition(log string) *partition {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.parts[log]; ok {
		return p
	}
	if len(t.parts) >= MaxPartitions {
		for name, p := range t.parts {
			if p.mu.TryLock() {
				idle := p.inflight == 0
				p.mu.Unlock()
				if idle {
					delete(t.parts, name)
					break
				}
			}
		}
	}
	p := &partition{}
	t.parts[log] = p
	return p
}

// Begin checks batch b for the open segment seg of log: rebuilding the
// state first when seg is new here or an append failed, and waiting for a
// pending identical batch to resolve.
func (t *Table) Begin(ctx context.Context, log string, seg uint64, b Batch) (Outcome, error) {
	p := t.partition(log)
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.segment != seg || !p.ready || p.broken {
			if p.inflight > 0 {
				return Outcome{Code: ErrNotLeader}, nil // appends of the old state still resolving
			}
			if p.broken && p.segment == seg {
				ok, err := t.src.Settled(ctx, log, seg)
				if err != nil || !ok {
					return Outcome{Code: ErrNotLeader}, err
				}
			}
			recs, err := t.src.Scan(ctx, log)
			if err != nil {
				return Outcome{Code: ErrNotLeader}, err
			}
			p.rebuild(recs)
			p.segment, p.ready, p.broken = seg, true, false
		}
		out, wait := p.check(b)
		if wait == nil {
			return out, nil
		}
		p.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			p.mu.Lock()
			return Outcome{Code: ErrNotLeader}, ctx.Err()
		}
		p.mu.Lock()
	}
}

// check applies Kafka's rules to b; a non-nil channel means an identical
// batch is pending: wait for it and check again.
func (p *partition) check(b Batch) (Outcome, <-chan struct{}) {
	p.tick++
	pr := p.producers[b.Producer]
	switch {
	case pr == nil:
		if b.First != 0 {
			return Outcome{Code: ErrUnknownProducer}, nil
		}
		pr = p.add(b.Producer)
		pr.epoch = b.Epoch
	case b.Epoch < pr.epoch:
		return Outcome{Code: ErrInvalidEpoch}, nil
	case b.Epoch > pr.epoch:
		if b.First != 0 {
			return Outcome{Code: ErrOutOfOrder}, nil
		}
		pr.epoch, pr.runs = b.Epoch, nil
	default:
		for _, r := range pr.runs {
			if r.first <= b.First && b.last() <= r.last && b.First <= b.last() {
				if r.offset < 0 {
					return Outcome{}, r.done
				}
				return Outcome{Dup: true, Base: r.offset + int64(b.First-r.first)}, nil
			}
		}
		switch {
		case b.First == record.SeqAdd(pr.last, 1):
		case b.First <= b.last() && b.last() <= pr.last:
			return Outcome{Code: ErrDuplicateSequence, Dup: true, Base: -1}, nil
		default:
			return Outcome{Code: ErrOutOfOrder}, nil
		}
	}
	pr.used = p.tick
	r := &run{first: b.First, last: b.last(), offset: -1, done: make(chan struct{})}
	pr.last = r.last
	pr.runs = append(pr.runs, r)
	if len(pr.runs) > MaxRuns {
		pr.runs = pr.runs[len(pr.runs)-MaxRuns:]
	}
	p.inflight++
	return Outcome{Ticket: &Ticket{p: p, pr: pr, r: r}}, nil
}

// add makes room for and returns a new producer.
func (p *partition) add(id int64) *producer {
	if p.producers == nil {
		p.producers = map[int64]*producer{}
	}
	if len(p.producers) >= MaxProducers {
		var lru int64
		var oldest *producer
		for pid, pr := range p.producers {
			if !pr.pending() && (oldest == nil || pr.used < oldest.used) {
				lru, oldest = pid, pr
			}
		}
		if oldest != nil {
			delete(p.producers, lru)
		}
	}
	pr := &producer{used: p.tick}
	p.producers[id] = pr
	return pr
}

func (pr *producer) pending() bool {
	for _, r := range pr.runs {
		if r.offset < 0 {
			return true
		}
	}
	return false
}

// Done resolves an accepted batch: stored at base, or not stored (ok
// false), which makes the partition rebuild before the next batch.
func (t *Table) Done(tk *Ticket, base int64, ok bool) {
	p := tk.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight--
	defer close(tk.r.done)
	if !ok {
		tk.r.failed = true
		p.broken = true
		return
	}
	tk.r.offset = base
	// Merge with the run before it when the records follow on.
	runs := tk.pr.runs
	for i := 1; i < len(runs); i++ {
		prev, r := runs[i-1], runs[i]
		if r == tk.r && prev.offset >= 0 && prev.last+1 == r.first && prev.offset+int64(prev.last-prev.first)+1 == r.offset {
			prev.last = r.last
			tk.pr.runs = append(runs[:i], runs[i+1:]...)
			break
		}
	}
}

// rebuild replaces the state with what the records say.
func (p *partition) rebuild(recs []Record) {
	p.producers = nil
	for _, rec := range recs {
		p.tick++
		pr := p.producers[rec.Producer]
		if pr == nil {
			pr = p.add(rec.Producer)
			pr.epoch = rec.Epoch
		}
		if rec.Epoch != pr.epoch {
			pr.epoch, pr.runs = rec.Epoch, nil
		}
		pr.used, pr.last = p.tick, rec.Seq
		if n := len(pr.runs); n > 0 {
			r := pr.runs[n-1]
			if r.last+1 == rec.Seq && r.offset+int64(r.last-r.first)+1 == rec.Offset {
				r.last = rec.Seq
				continue
			}
		}
		pr.runs = append(pr.runs, &run{first: rec.Seq, last: rec.Seq, offset: rec.Offset})
		if len(pr.runs) > MaxRuns {
			pr.runs = pr.runs[1:]
		}
	}
}
