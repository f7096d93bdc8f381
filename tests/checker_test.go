package tests

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/backends/mmapstore"
	"github.com/walrus-go/walrus/engine"
)

// The read-back checker shared by the tests whose readers use GET while
// nodes fail (TestReplicationResilience, TestNemesis). GET is destructive:
// the shared cursor moves when the Raft leader hands an entry out, so an
// entry whose reply was lost with a killed connection is consumed and never
// delivered again (README §11, "GET and the cursor redelivery window").
// The checker therefore accepts an acknowledged entry that was never read
// only where a GET reply was lost: between the reads of the same writer's
// previous and next entries, and no more such entries than lost replies.

// writerHistory is what one writer knows about its PUTs, payload
// "<prefix>w<writer>-<seq>".
type writerHistory struct {
	// Acked lists the acknowledged sequence numbers in the order written.
	Acked []int
	// Sent reports whether seq was ever sent (acknowledged or not).
	Sent func(seq int) bool
}

// readHistory is one reader's view: payloads in delivery order and, for
// each GET whose reply never arrived, len(Reads) at that moment.
type readHistory struct {
	Reads  []string
	LostAt []int
}

// entryRef names one writer's entry.
type entryRef struct {
	Writer, Seq int
}

// readCheck is the checker's verdict.
type readCheck struct {
	Acked, Read, Distinct int
	// Dups counts reads of an entry already read (redeliveries).
	Dups int
	// Consumed are acknowledged entries never read whose absence a lost
	// GET reply explains.
	Consumed []entryRef
	// Missing are acknowledged entries never read that no lost GET reply
	// explains: data loss (or a cursor that skipped them).
	Missing []entryRef
	// TooManyMissing is set when more entries are absent than GET replies
	// were lost, whatever their positions.
	TooManyMissing bool
	// Phantoms are payloads no writer sent (or not in the expected form).
	Phantoms []string
	// OrderViolations describe entries first read after a later entry of
	// the same writer.
	OrderViolations []string
}

// ok reports whether the history passes, with duplicates judged by the
// caller (only the cursor's redelivery window may produce them).
func (r readCheck) ok() bool {
	return len(r.Missing) == 0 && !r.TooManyMissing && len(r.Phantoms) == 0 && len(r.OrderViolations) == 0
}

// checkReads checks a reader's history against the writers' records.
func checkReads(prefix string, writers []writerHistory, h readHistory) readCheck {
	var res readCheck
	res.Read = len(h.Reads)
	seen := map[entryRef]int{}
	firstPos := make([]map[int]int, len(writers)) // writer -> seq -> first read position
	for k := range firstPos {
		firstPos[k] = map[int]int{}
	}
	last := make([]int, len(writers))
	for k := range last {
		last[k] = -1
	}
	for i, p := range h.Reads {
		var e entryRef
		rest, ok := strings.CutPrefix(p, prefix+"w")
		if ok {
			_, err := fmt.Sscanf(rest, "%d-%d", &e.Writer, &e.Seq)
			ok = err == nil && fmt.Sprintf("%d-%d", e.Writer, e.Seq) == rest && e.Writer >= 0 && e.Writer < len(writers)
		}
		if !ok {
			res.Phantoms = append(res.Phantoms, p)
			continue
		}
		seen[e]++
		if seen[e] > 1 {
			res.Dups++
			continue
		}
		if !writers[e.Writer].Sent(e.Seq) {
			res.Phantoms = append(res.Phantoms, p+" (never sent)")
			continue
		}
		firstPos[e.Writer][e.Seq] = i
		if e.Seq <= last[e.Writer] {
			res.OrderViolations = append(res.OrderViolations, fmt.Sprintf("writer %s%d: entry %d first read (read #%d) after entry %d", prefix, e.Writer, e.Seq, i, last[e.Writer]))
		}
		last[e.Writer] = max(last[e.Writer], e.Seq)
	}
	res.Distinct = len(seen)
	var absent []entryRef
	for k, w := range writers {
		res.Acked += len(w.Acked)
		for _, s := range w.Acked {
			if seen[entryRef{k, s}] == 0 {
				absent = append(absent, entryRef{k, s})
			}
		}
	}
	res.TooManyMissing = len(absent) > len(h.LostAt)
	if len(absent) == 0 {
		return res
	}
	// For each writer, its read entries sorted by seq with the running
	// maximum of their first positions from the left (entries before a
	// seq) and the running minimum from the right (entries after it).
	type posIndex struct {
		seqs         []int
		maxLo, minHi []int
	}
	idx := make([]posIndex, len(writers))
	for k := range writers {
		pi := posIndex{seqs: make([]int, 0, len(firstPos[k]))}
		for s := range firstPos[k] {
			pi.seqs = append(pi.seqs, s)
		}
		slices.Sort(pi.seqs)
		n := len(pi.seqs)
		pi.maxLo, pi.minHi = make([]int, n), make([]int, n)
		for i, s := range pi.seqs {
			pi.maxLo[i] = firstPos[k][s]
			if i > 0 {
				pi.maxLo[i] = max(pi.maxLo[i], pi.maxLo[i-1])
			}
		}
		for i := n - 1; i >= 0; i-- {
			pi.minHi[i] = firstPos[k][pi.seqs[i]]
			if i < n-1 {
				pi.minHi[i] = min(pi.minHi[i], pi.minHi[i+1])
			}
		}
		idx[k] = pi
	}
	lostAt := slices.Clone(h.LostAt)
	slices.Sort(lostAt)
	for _, m := range absent {
		pi := idx[m.Writer]
		j := sort.SearchInts(pi.seqs, m.Seq) // first read seq > m.Seq (m.Seq itself was not read)
		lo, hi := -1, len(h.Reads)
		if j > 0 {
			lo = pi.maxLo[j-1]
		}
		if j < len(pi.seqs) {
			hi = pi.minHi[j]
		}
		// A lost reply at position at (len(reads) then) sits between reads
		// lo and hi when lo < at <= hi.
		k := sort.SearchInts(lostAt, lo+1)
		if k < len(lostAt) && lostAt[k] <= hi {
			res.Consumed = append(res.Consumed, m)
		} else {
			res.Missing = append(res.Missing, m)
		}
	}
	return res
}

func TestCheckReads(t *testing.T) {
	sentAll := func(n int) func(int) bool { return func(s int) bool { return s >= 0 && s < n } }
	tests := []struct {
		name   string
		acked  [][]int
		reads  []string
		lostAt []int
		want   func(readCheck) error
	}{
		{
			name:  "all read once",
			acked: [][]int{{0, 1, 2}, {0, 1}},
			reads: []string{"xw0-0", "xw1-0", "xw0-1", "xw1-1", "xw0-2"},
			want: func(r readCheck) error {
				if !r.ok() || r.Dups != 0 || r.Acked != 5 || r.Distinct != 5 {
					return fmt.Errorf("%+v", r)
				}
				return nil
			},
		},
		{
			name:   "missing explained by a lost reply between neighbours",
			acked:  [][]int{{0, 1, 2}},
			reads:  []string{"xw0-0", "xw0-2"},
			lostAt: []int{1},
			want: func(r readCheck) error {
				if !r.ok() || len(r.Consumed) != 1 || r.Consumed[0] != (entryRef{0, 1}) {
					return fmt.Errorf("%+v", r)
				}
				return nil
			},
		},
		{
			name:   "missing with the lost reply elsewhere",
			acked:  [][]int{{0, 1, 2, 3}},
			reads:  []string{"xw0-0", "xw0-2", "xw0-3"},
			lostAt: []int{3},
			want: func(r readCheck) error {
				if r.ok() || len(r.Missing) != 1 || r.Missing[0] != (entryRef{0, 1}) {
					return fmt.Errorf("%+v", r)
				}
				return nil
			},
		},
		{
			name:   "more missing than lost replies",
			acked:  [][]int{{0, 1, 2}},
			reads:  []string{"xw0-0"},
			lostAt: []int{1},
			want: func(r readCheck) error {
				if r.ok() || !r.TooManyMissing {
					return fmt.Errorf("%+v", r)
				}
				return nil
			},
		},
		{
			name:  "phantoms, duplicates and order",
			acked: [][]int{{0, 1}},
			reads: []string{"xw0-1", "xw0-0", "xw0-1", "xw0-9", "yw0-0", "xw3-0", "xw0-01"},
			want: func(r readCheck) error {
				if r.Dups != 1 || len(r.Phantoms) != 4 || len(r.OrderViolations) != 1 || len(r.Missing) != 0 {
					return fmt.Errorf("%+v", r)
				}
				return nil
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ws []writerHistory
			for _, a := range tc.acked {
				ws = append(ws, writerHistory{Acked: a, Sent: sentAll(len(a) + 1)})
			}
			if err := tc.want(checkReads("x", ws, readHistory{Reads: tc.reads, LostAt: tc.lostAt})); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestFindEntry checks the nemesis's reader of mmap segment files against
// the store itself: every entry of several batches is found at its offset.
func TestFindEntry(t *testing.T) {
	dir := t.TempDir()
	s, err := mmapstore.Open(dir, mmapstore.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := engine.SegmentID{Topic: "t", Segment: 7}
	var want []string
	for b := range 3 {
		var batch [][]byte
		for i := range 4 {
			p := fmt.Sprintf("nw%d-%d", b, i)
			batch = append(batch, []byte(p))
			want = append(want, p)
		}
		if _, err := s.Append(t.Context(), id, batch); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Seal(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "topics", "t", fmt.Sprintf("%020d.seg", 7))
	for off, p := range want {
		got, ok := findEntry(path, []byte(p))
		if !ok || got != uint64(off) {
			t.Fatalf("findEntry(%q) = %d, %v; want %d", p, got, ok, off)
		}
	}
	if _, ok := findEntry(path, []byte("nw9-9")); ok {
		t.Fatal("found an entry never written")
	}
}
