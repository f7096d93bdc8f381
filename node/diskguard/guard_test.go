package diskguard

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/wire"
)

// fakeFS is a file system whose free space a test sets.
type fakeFS struct {
	free, total atomic.Uint64
	fail        atomic.Bool
	calls       atomic.Int64
}

func (f *fakeFS) stat(string) (Usage, error) {
	f.calls.Add(1)
	if f.fail.Load() {
		return Usage{}, errors.New("statfs: injected")
	}
	return Usage{FreeBytes: f.free.Load(), TotalBytes: f.total.Load()}, nil
}

func newFake(free, total uint64) *fakeFS {
	f := &fakeFS{}
	f.free.Store(free)
	f.total.Store(total)
	return f
}

func TestThresholds(t *testing.T) {
	const gib = 1 << 30
	cases := []struct {
		name        string
		minBytes    uint64
		minPct      float64
		free, total uint64
		wantFull    bool
		wantLimit   uint64
	}{
		{"plenty", 256 << 20, 5, 50 * gib, 100 * gib, false, 5 * gib},
		{"below percent", 256 << 20, 5, 4 * gib, 100 * gib, true, 5 * gib},
		{"below bytes on a small disk", 256 << 20, 5, 100 << 20, gib, true, 256 << 20},
		{"exactly at the limit", 1000, 0, 1000, 10000, false, 1000},
		{"one byte short", 1000, 0, 999, 10000, true, 1000},
		{"thresholds off", 0, 0, 0, 10000, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := newFake(c.free, c.total)
			g := New(Config{Node: 3, MinFreeBytes: c.minBytes, MinFreePercent: c.minPct, Stat: fs.stat})
			err := g.Check()
			df, isFull := errors.AsType[*wire.DiskFullError](err)
			if isFull != c.wantFull {
				t.Fatalf("Check() = %v, want full=%v", err, c.wantFull)
			}
			if isFull {
				if df.Node != 3 || df.FreeBytes != c.free || df.RequiredBytes != c.wantLimit {
					t.Fatalf("error %+v, want node 3, free %d, required %d", df, c.free, c.wantLimit)
				}
				if !errors.Is(err, wire.ErrDiskFull) {
					t.Fatal("not ErrDiskFull")
				}
			}
			if got := g.cfg.Limit(c.total); got != c.wantLimit {
				t.Fatalf("Limit = %d, want %d", got, c.wantLimit)
			}
		})
	}
}

// TestCachedAndRecovers: the file system is read at most once per
// Refresh, and the verdict follows it both ways without a restart.
func TestCachedAndRecovers(t *testing.T) {
	fs := newFake(10, 1000)
	full := prometheus.NewGauge(prometheus.GaugeOpts{Name: "full"})
	refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "refused"})
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
	g := New(Config{Node: 1, MinFreeBytes: 100, Refresh: time.Hour, Stat: fs.stat, Full: full, Refused: refused, Logger: logger})
	for range 1000 {
		if g.Check() == nil {
			t.Fatal("not full")
		}
	}
	if n := fs.calls.Load(); n != 1 {
		t.Fatalf("statfs ran %d times for 1000 checks within one refresh period", n)
	}
	if testutil.ToFloat64(full) != 1 || testutil.ToFloat64(refused) != 1000 {
		t.Fatalf("gauge %v, refused %v", testutil.ToFloat64(full), testutil.ToFloat64(refused))
	}
	fs.free.Store(500)
	if g.Check() == nil {
		t.Fatal("the cached verdict changed before the refresh period")
	}
	g.Refresh()
	if err := g.Check(); err != nil {
		t.Fatalf("after space was freed: %v", err)
	}
	if testutil.ToFloat64(full) != 0 {
		t.Fatal("gauge still 1")
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if !strings.Contains(out, "disk full: refusing appends") {
		t.Fatalf("no trip line in %q", out)
	}
	// The clear came within LogEvery of the trip: rate-limited away.
	if strings.Contains(out, "accepting appends") {
		t.Fatalf("clear line not rate-limited: %q", out)
	}
}

// TestLogLinesTellTheLastState: flaps inside LogEvery are not logged one
// by one, but once the window passes the state that holds is logged.
func TestLogLinesTellTheLastState(t *testing.T) {
	fs := newFake(0, 1000)
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
	g := New(Config{Node: 1, MinFreeBytes: 100, Refresh: time.Hour, LogEvery: 50 * time.Millisecond, Stat: fs.stat, Logger: logger})
	g.Check() // trips: logged
	for i := range 6 {
		fs.free.Store(uint64(i%2) * 500) // clear, full, clear, ...
		g.Refresh()
	}
	fs.free.Store(500)
	g.Refresh()
	count := func(s string) int {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Count(logs.String(), s)
	}
	if n := count("accepting appends"); n > 1 {
		t.Fatalf("%d clear lines inside the window", n)
	}
	if err := testcluster.Poll(5*time.Second, func() error {
		if g.Refresh(); count("accepting appends") == 0 {
			return errors.New("the clear that holds was never logged")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := count("refusing appends"); n != 1 {
		t.Fatalf("%d trip lines, want 1", n)
	}
}

// TestRefreshesByItself: with a short period, a freed disk is noticed by
// Check alone.
func TestRefreshesByItself(t *testing.T) {
	fs := newFake(0, 1000)
	g := New(Config{Node: 1, MinFreePercent: 10, Refresh: time.Millisecond, Stat: fs.stat})
	if g.Check() == nil {
		t.Fatal("not full")
	}
	fs.free.Store(900)
	if err := testcluster.Poll(5*time.Second, g.Check); err != nil {
		t.Fatalf("guard did not clear: %v", err)
	}
}

// TestStatFailureDoesNotBlock: an unknown verdict never refuses writes.
func TestStatFailureDoesNotBlock(t *testing.T) {
	fs := newFake(0, 1000)
	fs.fail.Store(true)
	g := New(Config{Node: 1, MinFreeBytes: 100, Stat: fs.stat})
	if err := g.Check(); err != nil {
		t.Fatalf("Check with a failing statfs: %v", err)
	}
	var nilGuard *Guard
	if err := nilGuard.Check(); err != nil {
		t.Fatal("a nil guard refused")
	}
}

func TestRealStatfs(t *testing.T) {
	u, err := statfs(t.TempDir())
	if err != nil {
		t.Skipf("statfs unsupported: %v", err)
	}
	if u.TotalBytes == 0 || u.FreeBytes > u.TotalBytes {
		t.Fatalf("implausible usage %+v", u)
	}
	g := New(Config{Node: 1, Dir: t.TempDir(), MinFreeBytes: u.TotalBytes + 1})
	if _, ok := errors.AsType[*wire.DiskFullError](g.Check()); !ok {
		t.Fatal("a threshold above the disk size did not trip")
	}
}

func TestConcurrentChecks(t *testing.T) {
	fs := newFake(0, 1000)
	g := New(Config{Node: 1, MinFreeBytes: 10, Refresh: time.Microsecond, Stat: fs.stat})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 2000 {
				if i == 0 {
					fs.free.Store(uint64(time.Now().UnixNano() % 20))
				}
				_ = g.Check()
			}
		})
	}
	wg.Wait()
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// BenchmarkCheck is the cost Check adds to every append batch: expected
// a clock read and an atomic load (tens of ns), statfs amortised away.
func BenchmarkCheck(b *testing.B) {
	fs := newFake(1<<30, 2<<30)
	g := New(Config{Node: 1, MinFreeBytes: 1 << 20, Stat: fs.stat})
	b.ReportAllocs()
	for b.Loop() {
		if g.Check() != nil {
			b.Fatal("full")
		}
	}
}
