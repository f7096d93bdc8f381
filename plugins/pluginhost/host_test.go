package pluginhost

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/engine/enginetest"
)

func TestConformanceTestPlugin(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		Open: func(tb testing.TB, dir string) (engine.SegmentStore, error) {
			return Open(tb.Context(), Config{Path: bin.testplugin, StartTimeout: 30 * time.Second})
		},
		NoReopen: true,
	})
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no path", Config{}, "plugin path"},
		{"bad sha256", Config{Path: bin.testplugin, SHA256: "abc"}, "plugin sha256"},
		{"negative start timeout", Config{Path: bin.testplugin, StartTimeout: -1}, "plugin start timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(t.Context(), tt.cfg)
			if !errors.Is(err, engine.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrInvalidArgument naming %q", err, tt.want)
			}
		})
	}
}

func TestMissingExecutable(t *testing.T) {
	_, err := Open(t.Context(), Config{Path: filepath.Join(t.TempDir(), "nope")})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("got %v, want an error naming the path", err)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestSHA256(t *testing.T) {
	t.Run("match", func(t *testing.T) {
		s := openTest(t, Config{Path: bin.testplugin, SHA256: fileSHA256(t, bin.testplugin)})
		if _, err := s.Append(t.Context(), engine.SegmentID{Topic: "a"}, [][]byte{[]byte("x")}); err != nil {
			t.Fatalf("append: %v", err)
		}
	})
	t.Run("mismatch is refused before running", func(t *testing.T) {
		started := filepath.Join(t.TempDir(), "started")
		wrong := strings.Repeat("ab", 32)
		_, err := Open(t.Context(), Config{
			Path: bin.testplugin, SHA256: wrong,
			Env: []string{"WALRUS_TESTPLUGIN_STARTED_FILE=" + started},
		})
		if err == nil || !strings.Contains(err.Error(), "does not match the configured sha256") || !strings.Contains(err.Error(), wrong) {
			t.Fatalf("got %v, want a sha256 mismatch naming the hash", err)
		}
		if _, statErr := os.Stat(started); !errors.Is(statErr, os.ErrNotExist) {
			t.Fatalf("the refused executable ran (started file: %v)", statErr)
		}
	})
	t.Run("env reaches the plugin", func(t *testing.T) {
		started := filepath.Join(t.TempDir(), "started")
		openTest(t, Config{Path: bin.testplugin, Env: []string{"WALRUS_TESTPLUGIN_STARTED_FILE=" + started}})
		if _, err := os.Stat(started); err != nil {
			t.Fatalf("plugin did not see its env: %v", err)
		}
	})
}

func TestProtocolVersionMismatch(t *testing.T) {
	_, err := Open(t.Context(), Config{
		Path: bin.testplugin, Env: []string{"WALRUS_TESTPLUGIN_PROTOCOL_VERSION=2"},
	})
	if err == nil || !strings.Contains(err.Error(), "protocol version 2") || !strings.Contains(err.Error(), "speaks version 1") {
		t.Fatalf("got %v, want a message naming versions 2 and 1", err)
	}
	if testing.Verbose() {
		t.Log(err)
	}
}

// TestLogsAreTaggedAndRelevelled: the plugin's JSON stderr lines keep their
// level, its stdout lines are logged, and both carry plugin=<name>.
func TestLogsAreTaggedAndRelevelled(t *testing.T) {
	logger, buf := testLogger(t)
	s := openTest(t, Config{Path: bin.testplugin, Name: "tp", Logger: logger, Env: []string{"WALRUS_TESTPLUGIN_CHATTY=1"}})
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("sync: %v", err)
	}
	find := func(msg string) map[string]any {
		for _, l := range buf.lines(t) {
			if l["msg"] == msg {
				return l
			}
		}
		return nil
	}
	eventually(t, 10*time.Second, "plugin log lines", func() bool {
		return find("testplugin serving memstore") != nil && find("testplugin: sync called") != nil
	})
	if l := find("testplugin serving memstore"); l["level"] != "WARN" || l["plugin"] != "tp" {
		t.Errorf("plugin stderr line not re-levelled/tagged: %v", l)
	}
	if l := find("testplugin: sync called"); l["plugin"] != "tp" || l["stream"] != "stdout" {
		t.Errorf("plugin stdout line not tagged: %v", l)
	}
}

func TestCloseStopsProcess(t *testing.T) {
	s := openTest(t, Config{Path: bin.testplugin})
	pid := s.PID()
	if pid <= 0 {
		t.Fatalf("pid %d", pid)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if !processGone(pid) {
		t.Fatalf("plugin pid %d still running after Close", pid)
	}
	if _, err := s.Stat(t.Context(), engine.SegmentID{Topic: "a"}); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("stat after close: %v, want ErrClosed", err)
	}
}

// TestRestartAfterKill: SIGKILL the plugin; calls fail fast with
// ErrUnavailable, the supervisor relaunches it, OnRestart fires, and calls
// succeed again.
func TestRestartAfterKill(t *testing.T) {
	var hooked atomic.Int64
	logger, buf := testLogger(t)
	s := openTest(t, Config{
		Path: bin.testplugin, Logger: logger, OnRestart: func() { hooked.Add(1) },
		RestartBackoffMin: 10 * time.Millisecond, RestartBackoffMax: 200 * time.Millisecond,
	})
	id := engine.SegmentID{Topic: "a"}
	pid := s.PID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sawUnavailable := false
	eventually(t, 20*time.Second, "plugin back after restart", func() bool {
		start := time.Now()
		_, err := s.Append(t.Context(), id, [][]byte{[]byte("x")})
		if errors.Is(err, engine.ErrUnavailable) {
			if !strings.Contains(err.Error(), "backend unavailable") {
				t.Fatalf("unavailable error text %q", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("failing call took %v, want fail-fast", d)
			}
			sawUnavailable = true
			return false
		}
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		return true
	})
	if !sawUnavailable {
		t.Log("the restart completed before any call saw the plugin down")
	}
	if s.Restarts() != 1 || hooked.Load() != 1 {
		t.Fatalf("restarts=%d hook=%d, want 1", s.Restarts(), hooked.Load())
	}
	if s.PID() == pid || !processGone(pid) {
		t.Fatalf("old pid %d, new pid %d", pid, s.PID())
	}
	logged := map[string]bool{}
	for _, l := range buf.lines(t) {
		logged[l["msg"].(string)] = true
	}
	for _, msg := range []string{"plugin exited unexpectedly; requests fail with backend unavailable until it is restarted", "plugin restarted"} {
		if !logged[msg] {
			t.Errorf("no log line %q", msg)
		}
	}
}

// TestNoOrphanWhenHostIsKilled SIGKILLs a host process and checks its
// plugin exits on its own.
func TestNoOrphanWhenHostIsKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	host := exec.CommandContext(ctx, bin.hosthelper, bin.testplugin)
	stdout, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	host.Stderr = os.Stderr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Process.Kill(); _ = host.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read helper output: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid ")))
	if err != nil || pid <= 0 {
		t.Fatalf("helper said %q", line)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if processGone(pid) {
		t.Fatalf("plugin %d not running before the host is killed", pid)
	}
	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = host.Wait()
	eventually(t, 10*time.Second, "orphaned plugin to exit", func() bool { return processGone(pid) })
}

func TestStartTimeout(t *testing.T) {
	start := time.Now()
	_, err := Open(t.Context(), Config{
		Path: bin.testplugin, StartTimeout: 500 * time.Millisecond,
		Env: []string{"WALRUS_TESTPLUGIN_HANG=1"},
	})
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("got %v, want a start timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Open took %v with a 500ms start timeout", d)
	}
}

// TestRestartBacksOffUntilThePluginCanStart: while the plugin cannot start,
// the supervisor keeps trying with growing waits (logged), calls fail fast,
// and service resumes once it can.
func TestRestartBacksOffUntilThePluginCanStart(t *testing.T) {
	failFile := filepath.Join(t.TempDir(), "fail")
	logger, buf := testLogger(t)
	s := openTest(t, Config{
		Path: bin.testplugin, Logger: logger,
		Env:               []string{"WALRUS_TESTPLUGIN_FAIL_IF_EXISTS=" + failFile},
		RestartBackoffMin: 20 * time.Millisecond, RestartBackoffMax: 160 * time.Millisecond,
	})
	if err := os.WriteFile(failFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(s.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	failures := func() []map[string]any {
		var out []map[string]any
		for _, l := range buf.lines(t) {
			if l["msg"] == "plugin restart failed" {
				out = append(out, l)
			}
		}
		return out
	}
	eventually(t, 20*time.Second, "five failed restarts", func() bool { return len(failures()) >= 5 })
	if _, err := s.Stat(t.Context(), engine.SegmentID{Topic: "a"}); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("call while the plugin cannot start: %v, want ErrUnavailable", err)
	}
	f := failures()
	if f[0]["retry_in"] == f[len(f)-1]["retry_in"] {
		t.Errorf("backoff did not grow: first retry_in %v, last %v", f[0]["retry_in"], f[len(f)-1]["retry_in"])
	}
	if err := os.Remove(failFile); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the plugin back", func() bool {
		_, err := s.Append(t.Context(), engine.SegmentID{Topic: "a"}, [][]byte{[]byte("x")})
		return err == nil
	})
	if s.Restarts() != 1 {
		t.Fatalf("restarts = %d, want 1 (failed attempts are not restarts)", s.Restarts())
	}
}

// TestWedgedPluginIsKilledAndRestarted: a plugin that is alive but no longer
// answers fails its liveness probes and is replaced.
func TestWedgedPluginIsKilledAndRestarted(t *testing.T) {
	wedge := filepath.Join(t.TempDir(), "wedge")
	logger, buf := testLogger(t)
	s := openTest(t, Config{
		Path: bin.testplugin, Logger: logger,
		Env:           []string{"WALRUS_TESTPLUGIN_WEDGE_FILE=" + wedge},
		ProbeInterval: 50 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond, ProbeFailures: 2,
		RestartBackoffMin: 10 * time.Millisecond, RestartBackoffMax: 50 * time.Millisecond,
	})
	pid := s.PID()
	if err := os.WriteFile(wedge, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the wedged plugin to be killed", func() bool { return processGone(pid) })
	if err := os.Remove(wedge); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "service back", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := s.Append(ctx, engine.SegmentID{Topic: "a"}, [][]byte{[]byte("x")})
		return err == nil
	})
	if s.Restarts() < 1 {
		t.Fatalf("restarts = %d", s.Restarts())
	}
	found := false
	for _, l := range buf.lines(t) {
		found = found || l["msg"] == "plugin unresponsive; killing it so it is restarted"
	}
	if !found {
		t.Error("no log line for the kill")
	}
}
