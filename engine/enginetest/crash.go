package enginetest

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// CrashHarness tells Crash how to open a store and what its child process
// writes. Only Open is required; every other field has a documented
// default.
type CrashHarness struct {
	// Open opens (or creates) the store on dir with opts. The child process
	// calls it with the kill's durability mode set in opts.Durability and
	// engine.DefaultOptions() otherwise; Crash calls it after each kill, with
	// engine.DefaultOptions(), to verify the directory (unless Reopen is
	// set). Required.
	Open func(tb testing.TB, dir string, opts engine.Options) (engine.SegmentStore, error)

	// Reopen opens the store after a kill to verify it. Optional: nil uses
	// Open with engine.DefaultOptions(). Set it to verify with other options
	// or to capture the store's recovery log.
	Reopen func(tb testing.TB, dir string) (engine.SegmentStore, error)

	// Modes are the durability modes the kills cycle through, in order.
	// Default: none, always, interval. A process kill (as opposed to power
	// loss) must lose no acknowledged entry in any mode.
	Modes []engine.Durability

	// Kills is how many times the child is killed. Default 6.
	Kills int
	// MaxKills and Budget extend the run: after Kills kills, Crash goes on
	// killing while fewer than MaxKills kills happened and less than Budget
	// has passed since it started. Default MaxKills = Kills (no extension).
	MaxKills int
	Budget   time.Duration

	// KillAfterMin and KillAfterMax bound the random time between the
	// child's first acknowledgement and its SIGKILL. Default 20 ms and
	// 200 ms; KillAfterMax is at most CrashKillAfterMax.
	KillAfterMin, KillAfterMax time.Duration

	// Writers is how many goroutines of the child append concurrently, each
	// to its own topic (crash0, crash1, ...). Default 2, at most
	// CrashWritersMax.
	Writers int

	// BatchEntries is the number of entries in the batch the child appends
	// to id when id holds count entries; at least 1, and within the store's
	// limits together with Entry. It must depend on its arguments alone:
	// the checker recomputes every batch boundary from it to prove that no
	// batch was torn. Default: 1 to 20, pseudo-random.
	BatchEntries func(id engine.SegmentID, count uint64) int

	// Entry is the content of the entry at offset in id. It must depend on
	// its arguments alone: the checker compares every byte. Default: 0 to
	// 299 bytes, pseudo-random.
	Entry func(id engine.SegmentID, offset uint64) []byte

	// Seal reports whether the child seals id, which holds count (> 0)
	// entries, instead of appending to it, and moves on to the next
	// segment. It must depend on its arguments alone, so a child that
	// restarts on a segment its predecessor meant to seal seals it too.
	// Default: after about one batch in 100, pseudo-random.
	Seal func(id engine.SegmentID, count uint64) bool
}

// Bounds on CrashHarness, so a typo cannot make a run last for hours.
const (
	CrashKillAfterMax = time.Minute
	CrashWritersMax   = 64
	crashKillsMax     = 1000
)

// The child's environment: set by the parent, read by Crash in the child.
const (
	crashEnvDir  = "WALRUS_ENGINETEST_CRASH_DIR"
	crashEnvMode = "WALRUS_ENGINETEST_CRASH_DURABILITY"
	crashEnvTest = "WALRUS_ENGINETEST_CRASH_TEST"
)

// crashFirstAckTimeout bounds the child's start (a race-enabled binary
// opening a store on a loaded machine is slow).
const crashFirstAckTimeout = 20 * time.Second

// Crash runs the crash-kill test against the store h describes. It
// re-executes the test binary as a child process that runs only the calling
// test, with an environment that makes this same Crash call act as the
// child: the child opens the store on a directory and appends in a loop
// from h.Writers goroutines, occasionally sealing and moving on to the next
// segment, and reports every acknowledged append and seal on a pipe. The
// parent SIGKILLs it at a random moment, reopens the directory and checks
// that every acknowledged entry is present byte for byte, that every
// acknowledged seal holds at its count, that every segment (acknowledged or
// not) holds whole batches of exact entries whose sizes sum to its Bytes,
// and, through the next child, that appending continues at the right
// offset. Entries found after a kill must survive the later kills too.
//
// Call Crash once per test function (or per subtest): the child finds its
// way back by the test's name. It needs no TestMain. Run it with -race; a
// kill costs a child start, up to KillAfterMax of appends, and a reopen
// that reads back every segment.
func Crash(t *testing.T, h CrashHarness) {
	t.Helper()
	h, err := h.withDefaults()
	if err != nil {
		t.Fatalf("enginetest: %v", err)
	}
	if dir := os.Getenv(crashEnvDir); dir != "" {
		if os.Getenv(crashEnvTest) != t.Name() {
			t.Skip("the child process of another enginetest.Crash test")
		}
		crashChild(t, h, dir, engine.Durability(os.Getenv(crashEnvMode)))
		return
	}
	dir := t.TempDir()
	st := crashState{acked: map[engine.SegmentID]uint64{}, sealed: map[engine.SegmentID]uint64{}}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	start := time.Now()
	kills := 0
	for kills < h.MaxKills && (kills < h.Kills || time.Since(start) < h.Budget) {
		mode := h.Modes[kills%len(h.Modes)]
		killAfter := h.KillAfterMin + time.Duration(rng.Int64N(int64(h.KillAfterMax-h.KillAfterMin)+1))
		acks := runCrashChild(t, dir, mode, killAfter, &st)
		kills++
		what := fmt.Sprintf("kill %d (%s, %v after the first ack, %d acks)", kills, mode, killAfter.Round(time.Millisecond), acks)
		verifyCrash(t, h, dir, &st, what)
		t.Log(what + ": verified")
	}
	total := uint64(0)
	for _, n := range st.acked {
		total += n
	}
	t.Logf("%d kills in %v; %d segments, %d entries verified after the last kill",
		kills, time.Since(start).Round(time.Millisecond), len(st.acked), total)
}

func (h CrashHarness) withDefaults() (CrashHarness, error) {
	if h.Open == nil {
		return h, fmt.Errorf("CrashHarness.Open is required")
	}
	if h.Reopen == nil {
		open := h.Open
		h.Reopen = func(tb testing.TB, dir string) (engine.SegmentStore, error) {
			return open(tb, dir, engine.DefaultOptions())
		}
	}
	if len(h.Modes) == 0 {
		h.Modes = []engine.Durability{engine.DurabilityNone, engine.DurabilityAlways, engine.DurabilityInterval}
	}
	for _, m := range h.Modes {
		if _, err := engine.ParseDurability(string(m)); err != nil {
			return h, fmt.Errorf("CrashHarness.Modes: %w", err)
		}
	}
	if h.Kills == 0 {
		h.Kills = 6
	}
	if h.MaxKills == 0 {
		h.MaxKills = h.Kills
	}
	if h.KillAfterMin == 0 && h.KillAfterMax == 0 {
		h.KillAfterMin, h.KillAfterMax = 20*time.Millisecond, 200*time.Millisecond
	}
	if h.Writers == 0 {
		h.Writers = 2
	}
	if h.BatchEntries == nil {
		h.BatchEntries = func(id engine.SegmentID, count uint64) int { return 1 + int(crashHash(id, count, 1)%20) }
	}
	if h.Entry == nil {
		h.Entry = defaultCrashEntry
	}
	if h.Seal == nil {
		h.Seal = func(id engine.SegmentID, count uint64) bool { return crashHash(id, count, 2)%100 == 0 }
	}
	var errs []string
	if h.Kills < 1 || h.MaxKills < h.Kills || h.MaxKills > crashKillsMax {
		errs = append(errs, fmt.Sprintf("Kills %d, MaxKills %d: want 1 <= Kills <= MaxKills <= %d", h.Kills, h.MaxKills, crashKillsMax))
	}
	if h.Budget < 0 {
		errs = append(errs, fmt.Sprintf("Budget %v: want >= 0", h.Budget))
	}
	if h.KillAfterMin < 0 || h.KillAfterMax < h.KillAfterMin || h.KillAfterMax > CrashKillAfterMax {
		errs = append(errs, fmt.Sprintf("KillAfterMin %v, KillAfterMax %v: want 0 <= min <= max <= %v", h.KillAfterMin, h.KillAfterMax, CrashKillAfterMax))
	}
	if h.Writers < 1 || h.Writers > CrashWritersMax {
		errs = append(errs, fmt.Sprintf("Writers %d: want 1 to %d", h.Writers, CrashWritersMax))
	}
	if errs != nil {
		return h, fmt.Errorf("CrashHarness: %s", strings.Join(errs, "; "))
	}
	return h, nil
}

// crashTopic is the topic writer w of the child appends to.
func crashTopic(w int) string { return fmt.Sprintf("crash%d", w) }

// crashHash mixes a segment, a count and a salt into 64 pseudo-random bits
// (splitmix64), for the defaults that must be functions of their arguments.
func crashHash(id engine.SegmentID, n, salt uint64) uint64 {
	f := fnv.New64a()
	f.Write([]byte(id.Topic))
	x := f.Sum64() ^ id.Segment*0x9E3779B97F4A7C15 ^ n*0xBF58476D1CE4E5B9 ^ salt
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

func defaultCrashEntry(id engine.SegmentID, offset uint64) []byte {
	e := make([]byte, crashHash(id, offset, 3)%300)
	var w [8]byte
	for i := range e {
		if i%8 == 0 {
			binary.LittleEndian.PutUint64(w[:], crashHash(id, offset, 4+uint64(i)))
		}
		e[i] = w[i%8]
	}
	return e
}

// crashRunPattern is the -test.run pattern that selects exactly the test
// named name (a subtest's levels are matched one by one).
func crashRunPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}
