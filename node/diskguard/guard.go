package diskguard

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/walrus-go/walrus/node/wire"
)

// Defaults of Config.
const (
	// DefaultMinFreeBytes is storage.min_free_bytes' default (256 MiB).
	DefaultMinFreeBytes = 256 << 20
	// DefaultMinFreePercent is storage.min_free_percent's default.
	DefaultMinFreePercent = 5
	// DefaultRefresh bounds how often statfs runs.
	DefaultRefresh = 250 * time.Millisecond
	// DefaultLogEvery rate-limits the trip/clear log lines of a flapping
	// disk.
	DefaultLogEvery = 10 * time.Second
)

// Usage is what a file system reports: the bytes an unprivileged writer
// may still use (statfs f_bavail) and its total size.
type Usage struct {
	FreeBytes  uint64
	TotalBytes uint64
}

// StatFunc reads the usage of the file system holding dir.
type StatFunc func(dir string) (Usage, error)

// Config is a Guard's configuration.
type Config struct {
	// Node is this node's id (it names the node in the error).
	Node uint64
	// Dir is a directory on the file system to watch (the node's data
	// directory).
	Dir string
	// MinFreeBytes: appends are refused below this many free bytes
	// (0: no byte threshold).
	MinFreeBytes uint64
	// MinFreePercent: appends are refused below this share of the file
	// system free, 0..100 (0: no percentage threshold).
	MinFreePercent float64
	// Refresh is the longest a verdict is reused; 0 means DefaultRefresh.
	Refresh time.Duration
	// LogEvery is the shortest gap between two trip/clear log lines; a
	// change inside it is logged at the first refresh after it (if it
	// still holds). 0 means DefaultLogEvery.
	LogEvery time.Duration
	// Stat reads the usage; nil means statfs (unix) or "never full".
	Stat StatFunc
	// Full, when set, is 1 while appends are refused and 0 otherwise.
	Full prometheus.Gauge
	// Refused, when set, counts the append batches Check refused.
	Refused prometheus.Counter
	Logger  *slog.Logger
}

type verdict struct {
	err *wire.DiskFullError // nil: enough space
}

// Guard is a cached free-space check.
type Guard struct {
	cfg Config

	cur    atomic.Pointer[verdict]
	nextAt atomic.Int64 // unix nanoseconds after which the verdict is stale

	mu         sync.Mutex // held by the one caller refreshing; guards the rest
	loggedAt   time.Time
	loggedFull bool // the state the last log line reported
	changes    int  // verdict changes since the last log line
	statFailed bool
}

// New builds a guard. A guard with both thresholds 0 never refuses.
func New(cfg Config) *Guard {
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = DefaultLogEvery
	}
	if cfg.Stat == nil {
		cfg.Stat = statfs
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Guard{cfg: cfg}
	g.cur.Store(&verdict{})
	if cfg.Full != nil {
		cfg.Full.Set(0)
	}
	return g
}

// Check returns a *wire.DiskFullError while the file system holding Dir
// has less free space than a threshold, nil otherwise (and when statfs
// fails: an unknown verdict never blocks writes). Call it before every
// append batch; it reads the file system at most every Refresh.
func (g *Guard) Check() error {
	if g == nil {
		return nil
	}
	if v := g.verdict(); v.err != nil {
		if g.cfg.Refused != nil {
			g.cfg.Refused.Inc()
		}
		return v.err
	}
	return nil
}

// Full reports whether appends are refused now (heartbeats tell the Raft
// leader); it refreshes like Check but counts no refusal.
func (g *Guard) Full() bool { return g != nil && g.verdict().err != nil }

// verdict returns the current verdict, refreshing it first when stale
// and no one else is.
func (g *Guard) verdict() *verdict {
	if time.Now().UnixNano() >= g.nextAt.Load() && g.mu.TryLock() {
		g.refreshLocked(time.Now())
		g.mu.Unlock()
	}
	return g.cur.Load()
}

// Refresh reads the file system now (tests, and a caller that just freed
// space and wants writes to resume at once).
func (g *Guard) Refresh() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refreshLocked(time.Now())
}

// Limit is the free bytes required on a file system of total bytes: the
// larger of the two thresholds.
func (c Config) Limit(total uint64) uint64 {
	pct := uint64(c.MinFreePercent / 100 * float64(total))
	return max(c.MinFreeBytes, pct)
}

func (g *Guard) refreshLocked(now time.Time) {
	defer g.nextAt.Store(now.Add(g.cfg.Refresh).UnixNano())
	if g.cfg.MinFreeBytes == 0 && g.cfg.MinFreePercent <= 0 {
		return
	}
	u, err := g.cfg.Stat(g.cfg.Dir)
	if err != nil {
		if !g.statFailed {
			g.statFailed = true
			g.cfg.Logger.Warn("disk guard: statfs failed; not refusing appends", "dir", g.cfg.Dir, "err", err)
		}
		g.set(now, &verdict{})
		return
	}
	g.statFailed = false
	limit := g.cfg.Limit(u.TotalBytes)
	if u.FreeBytes < limit {
		g.set(now, &verdict{err: &wire.DiskFullError{Node: g.cfg.Node, FreeBytes: u.FreeBytes, RequiredBytes: limit}})
		return
	}
	g.set(now, &verdict{})
}

// set installs v, gauges a change of verdict, and logs the state when it
// differs from the last line logged, at most once per LogEvery (so a
// flapping disk writes few lines, and the last one tells the truth).
func (g *Guard) set(now time.Time, v *verdict) {
	old := g.cur.Swap(v)
	full := v.err != nil
	if (old.err != nil) != full {
		g.changes++
		if g.cfg.Full != nil {
			g.cfg.Full.Set(map[bool]float64{false: 0, true: 1}[full])
		}
	}
	if full == g.loggedFull || (!g.loggedAt.IsZero() && now.Sub(g.loggedAt) < g.cfg.LogEvery) {
		return
	}
	g.loggedAt, g.loggedFull = now, full
	flaps := g.changes - 1
	g.changes = 0
	if full {
		g.cfg.Logger.Warn("disk full: refusing appends until space is freed", "node_id", g.cfg.Node, "dir", g.cfg.Dir,
			"free_bytes", v.err.FreeBytes, "required_bytes", v.err.RequiredBytes, "changes_not_logged", flaps)
		return
	}
	g.cfg.Logger.Info("disk space available again: accepting appends", "node_id", g.cfg.Node, "dir", g.cfg.Dir, "changes_not_logged", flaps)
}
