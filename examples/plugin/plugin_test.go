package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/engine/enginetest"
	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/plugins/pluginhost"
)

// plugins are the executables TestMain builds: this example and, for
// comparison, the built-in mmap backend served as a plugin.
var plugins = []struct {
	name string
	pkg  string
	path string
}{
	{name: "bolt", pkg: "github.com/walrus-go/walrus/examples/plugin"},
	{name: "mmap", pkg: "github.com/walrus-go/walrus/plugins/mmapplugin"},
}

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "example-plugin-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for i := range plugins {
		plugins[i].path = filepath.Join(dir, "walrus-"+plugins[i].name+"-plugin")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", plugins[i].path, plugins[i].pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", plugins[i].pkg, err, out)
			return 1
		}
	}
	// testcluster.Main builds the walrus binaries (unless -short) and runs
	// the tests; the cluster tests in cluster_test.go need them.
	return testcluster.Main(m)
}

// openPlugin serves the store in dir out of process through pluginhost.
func openPlugin(ctx context.Context, path, dir string, cfg pluginhost.Config, args ...string) (*pluginhost.Store, error) {
	cfg.Path, cfg.Args = path, append([]string{"-dir", dir}, args...)
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	s, err := pluginhost.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s.(*pluginhost.Store), nil
}

// TestConformanceOutOfProcess runs the whole engine suite, reopen and crash
// cases included, against each plugin served through the host. Crash
// SIGKILLs the plugin process.
func TestConformanceOutOfProcess(t *testing.T) {
	for _, p := range plugins {
		t.Run(p.name, func(t *testing.T) {
			enginetest.Run(t, enginetest.Harness{
				Open: func(tb testing.TB, dir string) (engine.SegmentStore, error) {
					// No restart within a test: Crash must leave the data
					// for the next Open alone.
					// Durability none keeps the suite fast (every plugin write
					// still survives the process being killed); the crash
					// test below runs the bolt plugin in its default mode,
					// always.
					return openPlugin(tb.Context(), p.path, dir, pluginhost.Config{RestartBackoffMin: time.Hour, RestartBackoffMax: time.Hour},
						"-durability", "none")
				},
				Crash: func(s engine.SegmentStore) {
					hs := s.(*pluginhost.Store)
					pid := hs.PID()
					_ = syscall.Kill(pid, syscall.SIGKILL)
					_ = hs.Close() // fails (the plugin is gone) but reaps it
					waitGone(pid)
				},
			})
		})
	}
}

// waitGone waits (bounded) until pid has exited and been reaped, so the
// next Open does not race the dead process's file locks.
func waitGone(pid int) {
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCrashWhileAppending kills the plugin process in the middle of a
// stream of appends: failing appends fail fast with ErrUnavailable, the
// host restarts the plugin, appends resume, and every acknowledged entry is
// still there at its offset.
func TestCrashWhileAppending(t *testing.T) {
	for _, p := range plugins {
		t.Run(p.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			s, err := openPlugin(ctx, p.path, t.TempDir(), pluginhost.Config{
				RestartBackoffMin: 20 * time.Millisecond, RestartBackoffMax: 500 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			id := engine.SegmentID{Topic: "crash", Segment: 7}
			acked := map[uint64][]byte{} // offset -> payload
			const batch = 4
			var seq, failures int
			killedPID := 0
			for ctx.Err() == nil {
				entries := make([][]byte, batch)
				for i := range entries {
					entries[i] = fmt.Appendf(nil, "entry-%06d", seq)
					seq++
				}
				start := time.Now()
				first, err := s.Append(ctx, id, entries)
				switch {
				case err == nil:
					for i, e := range entries {
						acked[first+uint64(i)] = e
					}
				case errors.Is(err, engine.ErrUnavailable):
					failures++
					if !strings.Contains(err.Error(), "backend unavailable") {
						t.Fatalf("unavailable error text: %q", err)
					}
					if d := time.Since(start); d > 2*time.Second {
						t.Fatalf("a failing append took %v; want fail-fast", d)
					}
				default:
					t.Fatalf("append: %v", err)
				}
				if killedPID == 0 && len(acked) >= 200*batch {
					killedPID = s.PID()
					if err := syscall.Kill(killedPID, syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
				}
				if killedPID != 0 && s.Restarts() >= 1 && len(acked) >= 400*batch {
					break
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("appends did not resume after the kill (restarts=%d, acked=%d, failures=%d)", s.Restarts(), len(acked), failures)
			}
			t.Logf("%d acknowledged entries, %d failed appends during the restart, restarts=%d", len(acked), failures, s.Restarts())
			info, err := s.Stat(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			for off := uint64(0); off < info.Entries; {
				got, err := s.Read(ctx, id, off, 1000, 1<<20)
				if err != nil {
					t.Fatalf("read @%d: %v", off, err)
				}
				for i, e := range got {
					if want, ok := acked[off+uint64(i)]; ok && string(e) != string(want) {
						t.Fatalf("offset %d holds %q, want acknowledged %q", off+uint64(i), e, want)
					}
					delete(acked, off+uint64(i))
				}
				off += uint64(len(got))
			}
			if len(acked) != 0 {
				t.Fatalf("%d acknowledged entries missing after the restart", len(acked))
			}
		})
	}
}

// TestCrashWhileAppendingConcurrently is the crash test with several
// writers at once, so coalesced AppendPipe requests are in flight when the
// plugin dies: every writer's acknowledged entries must survive.
func TestCrashWhileAppendingConcurrently(t *testing.T) {
	p := plugins[0]
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	s, err := openPlugin(ctx, p.path, t.TempDir(), pluginhost.Config{
		RestartBackoffMin: 20 * time.Millisecond, RestartBackoffMax: 500 * time.Millisecond,
	}, "-durability", "none")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const writers = 6
	type result struct {
		writer int
		acked  map[uint64][]byte
		err    error
	}
	results := make(chan result, writers)
	var ackedTotal atomic.Int64
	stop := make(chan struct{})
	for w := range writers {
		go func() {
			id := engine.SegmentID{Topic: fmt.Sprintf("crash%d", w), Segment: 1}
			r := result{writer: w, acked: map[uint64][]byte{}}
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					results <- r
					return
				default:
				}
				e := fmt.Appendf(nil, "w%d-%06d", w, seq)
				first, err := s.Append(ctx, id, [][]byte{e})
				switch {
				case err == nil:
					r.acked[first] = e
					ackedTotal.Add(1)
				case errors.Is(err, engine.ErrUnavailable):
				default:
					r.err = fmt.Errorf("writer %d: %w", w, err)
					results <- r
					return
				}
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		for !cond() {
			if ctx.Err() != nil {
				close(stop)
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("300 acknowledged appends", func() bool { return ackedTotal.Load() >= 300 })
	if err := syscall.Kill(s.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := ackedTotal.Load()
	waitFor("the restart", func() bool { return s.Restarts() >= 1 })
	waitFor("appends after the restart", func() bool { return ackedTotal.Load() >= killedAt+300 })
	close(stop)
	for range writers {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		topic := fmt.Sprintf("crash%d", r.writer)
		got, err := s.Read(ctx, engine.SegmentID{Topic: topic, Segment: 1}, 0, 1<<20, 64<<20)
		if err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		for off, want := range r.acked {
			if off >= uint64(len(got)) || string(got[off]) != string(want) {
				t.Fatalf("writer %d: acknowledged %q at offset %d lost after the restart", r.writer, want, off)
			}
		}
	}
}
