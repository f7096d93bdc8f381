package pluginsdk

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestDependencies guards the promise that a plugin binary does not link the
// node's heavy dependencies.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.CommandContext(t.Context(), goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps returned only %d packages: %q", len(deps), out)
	}
	forbidden := []string{
		"github.com/dgraph-io/badger", "github.com/hashicorp/raft", "github.com/spf13/viper",
		"github.com/spf13/cobra", "github.com/prometheus/", "github.com/walrus-go/walrus/node",
		"github.com/walrus-go/walrus/backends/",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("pluginsdk depends on %s (forbidden prefix %s)", d, f)
			}
		}
	}
}

func TestWatchParent(t *testing.T) {
	t.Run("parent gone", func(t *testing.T) {
		var ppid atomic.Int64
		ppid.Store(42)
		done := make(chan string, 1)
		go func() {
			done <- watchParent(t.Context(), 42, time.Millisecond, func() int { return int(ppid.Load()) }, nil, time.Hour)
		}()
		ppid.Store(1) // re-parented to init
		select {
		case reason := <-done:
			if reason != "parent process is gone" {
				t.Fatalf("reason %q", reason)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("watcher did not notice the parent was gone")
		}
	})
	t.Run("SIGTERM after the parent died", func(t *testing.T) {
		sigs := make(chan os.Signal, 1)
		sigs <- syscall.SIGTERM
		if reason := watchParent(t.Context(), 42, time.Hour, func() int { return 1 }, sigs, time.Hour); !strings.Contains(reason, "parent process is gone") {
			t.Fatalf("reason %q", reason)
		}
	})
	t.Run("SIGTERM with the parent alive waits out the grace", func(t *testing.T) {
		sigs := make(chan os.Signal, 1)
		sigs <- syscall.SIGTERM
		start := time.Now()
		reason := watchParent(t.Context(), 42, time.Hour, func() int { return 42 }, sigs, 50*time.Millisecond)
		if !strings.Contains(reason, "did not stop the plugin") || time.Since(start) < 50*time.Millisecond {
			t.Fatalf("reason %q after %v", reason, time.Since(start))
		}
	})
	t.Run("SIGTERM with the parent alive, host stops the plugin", func(t *testing.T) {
		sigs := make(chan os.Signal, 1)
		sigs <- syscall.SIGTERM
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if reason := watchParent(ctx, 42, time.Hour, func() int { return 42 }, sigs, time.Hour); reason != "" {
			t.Fatalf("reason %q, want none (the host's shutdown won)", reason)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if reason := watchParent(ctx, 42, time.Hour, func() int { return 42 }, nil, time.Hour); reason != "" {
			t.Fatalf("reason %q, want none", reason)
		}
	})
}
