//go:build linux

package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/engine/enginetest"
)

// TestSharedMemoryNegotiated: a plugin built with this SDK gets appends
// through the ring; one that declines it (as a plugin built before the
// ring) gets them framed on the data channel socket, with the same results.
func TestSharedMemoryNegotiated(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		want bool
	}{
		{"new plugin", nil, true},
		{"older plugin", []string{"WALRUS_TESTPLUGIN_NO_SHM=1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, Config{Path: bin.testplugin, Env: tc.env})
			id := engine.SegmentID{Topic: "n"}
			for i := range 20 {
				if first, err := s.Append(t.Context(), id, [][]byte{fmt.Appendf(nil, "e%d", i)}); err != nil || first != uint64(i) {
					t.Fatalf("append %d: first=%d err=%v", i, first, err)
				}
			}
			if got := s.SharedMemory(); got != tc.want {
				t.Fatalf("SharedMemory() = %v, want %v", got, tc.want)
			}
			got, err := s.Read(t.Context(), id, 0, 100, 1<<20)
			if err != nil || len(got) != 20 || string(got[19]) != "e19" {
				t.Fatalf("read back %d entries: %v", len(got), err)
			}
		})
	}
}

// TestConformanceOlderPlugin runs the conformance suite out of process
// against a plugin that declines the ring (TestConformanceTestPlugin runs
// it over the ring).
func TestConformanceOlderPlugin(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		Open: func(tb testing.TB, dir string) (engine.SegmentStore, error) {
			return Open(tb.Context(), Config{Path: bin.testplugin, StartTimeout: 30 * time.Second, Env: []string{"WALRUS_TESTPLUGIN_NO_SHM=1"}})
		},
		NoReopen: true,
	})
}

// TestKillDuringSharedMemoryAppends: SIGKILL the plugin while 16 writers
// append through the ring, and again while appends are parked in a wedged
// store: every call in flight returns (ErrUnavailable), none hangs, and
// appends resume on the restarted plugin, again through the ring.
func TestKillDuringSharedMemoryAppends(t *testing.T) {
	wedge := filepath.Join(t.TempDir(), "wedge")
	s := openTest(t, Config{
		Path: bin.testplugin, Env: []string{"WALRUS_TESTPLUGIN_WEDGE_FILE=" + wedge},
		RestartBackoffMin: 10 * time.Millisecond, RestartBackoffMax: 100 * time.Millisecond,
		ProbeInterval: time.Hour, // only the kills below end a plugin
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	t.Run("streaming", func(t *testing.T) {
		var acked atomic.Int64
		var wg sync.WaitGroup
		stop := make(chan struct{})
		errs := make(chan error, 16)
		pid := s.PID()
		for w := range 16 {
			wg.Go(func() {
				id := engine.SegmentID{Topic: fmt.Sprintf("k%d", w)}
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, err := s.Append(ctx, id, [][]byte{[]byte("x"), []byte("y")})
					switch {
					case err == nil:
						acked.Add(1)
					case errors.Is(err, engine.ErrUnavailable):
					default:
						errs <- fmt.Errorf("writer %d: %w", w, err)
						return
					}
				}
			})
		}
		eventually(t, 20*time.Second, "appends through the ring", func() bool { return acked.Load() >= 200 && s.SharedMemory() })
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "the restart", func() bool { return s.Restarts() >= 1 })
		before := acked.Load()
		eventually(t, 20*time.Second, "appends after the restart", func() bool { return acked.Load() >= before+200 })
		close(stop)
		waitGroupWithin(t, &wg, 20*time.Second, "writers to stop")
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if !s.SharedMemory() {
			t.Fatal("the restarted plugin does not take appends through the ring")
		}
	})

	t.Run("parked", func(t *testing.T) {
		pid := s.PID()
		if err := os.WriteFile(wedge, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove(wedge) })
		var started atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for w := range 40 { // more than the ring's slots
			wg.Go(func() {
				started.Add(1)
				_, err := s.Append(ctx, engine.SegmentID{Topic: fmt.Sprintf("p%d", w)}, [][]byte{[]byte("x")})
				errs <- err
			})
		}
		eventually(t, 20*time.Second, "writers to start", func() bool { return started.Load() == 40 })
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitGroupWithin(t, &wg, 20*time.Second, "appends parked in a killed plugin to return")
		close(errs)
		for err := range errs {
			if !errors.Is(err, engine.ErrUnavailable) {
				t.Fatalf("append in flight when the plugin was killed: %v, want ErrUnavailable", err)
			}
		}
	})
}

// waitGroupWithin fails the test if wg is not done within timeout.
func waitGroupWithin(t *testing.T, wg *sync.WaitGroup, timeout time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}
