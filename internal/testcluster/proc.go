package testcluster

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is one ad-hoc walrus process started by StartWalrus, for tests
// that need a daemon outside a Cluster (flags, environment, no config).
type Proc struct {
	p          *process
	OutputPath string // the process's stdout and stderr
}

// StartWalrus runs the built walrus binary with args in dir (the working
// directory; "" = a new temporary one), with env added to a WALRUS_-free
// environment. The process is killed at cleanup if still running, and its
// output is logged if the test failed.
func StartWalrus(t testing.TB, dir string, env []string, args ...string) *Proc {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	out := filepath.Join(t.TempDir(), "walrus.out")
	p, err := startProcess(WalrusBin(t), dir, out, env, args...)
	if err != nil {
		t.Fatalf("testcluster: start walrus: %v", err)
	}
	pr := &Proc{p: p, OutputPath: out}
	t.Cleanup(func() {
		if !p.exited() {
			p.signalGroup(syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("---- walrus %v output ----\n%s", args, Tail(out, logTailLines))
		}
	})
	return pr
}

// Stop sends SIGTERM and waits up to DefaultStopTimeout; it returns the
// exit error (nil for status 0).
func (pr *Proc) Stop() error { return pr.StopWith(syscall.SIGTERM) }

// StopWith is Stop with another signal (e.g. SIGINT, as Ctrl-C sends).
func (pr *Proc) StopWith(sig syscall.Signal) error {
	pr.p.requested.Store(true)
	if err := pr.p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return pr.Wait(DefaultStopTimeout)
}

// Kill sends SIGKILL to the process group and waits.
func (pr *Proc) Kill() {
	pr.p.signalGroup(syscall.SIGKILL)
	<-pr.p.done
}

// Wait waits up to timeout for the process to exit by itself and returns
// its exit error (nil for status 0).
func (pr *Proc) Wait(timeout time.Duration) error {
	select {
	case <-pr.p.done:
		return pr.p.err
	case <-time.After(timeout):
		return fmt.Errorf("testcluster: walrus still running after %v", timeout)
	}
}

// Exited reports whether the process has exited, and its exit error.
func (pr *Proc) Exited() (bool, error) {
	if !pr.p.exited() {
		return false, nil
	}
	return true, pr.p.err
}

// Output returns everything the process wrote to stdout and stderr so far.
func (pr *Proc) Output() string {
	b, err := os.ReadFile(pr.OutputPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// ExitCode extracts the status from an exit error (0 for nil, -1 if it is
// not an exit status).
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// RunCLI runs the built walrus-cli with args (at most DefaultStopTimeout)
// and returns its stdout, stderr and exit status.
func RunCLI(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(CLIBin(t), args...)
	cmd.Env = CleanEnv()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatalf("testcluster: start walrus-cli: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code = ExitCode(err)
		if code < 0 {
			t.Fatalf("testcluster: walrus-cli %v: %v", args, err)
		}
	case <-time.After(DefaultStopTimeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("testcluster: walrus-cli %v did not finish within %v", args, DefaultStopTimeout)
	}
	return o.String(), e.String(), code
}

// startProcess runs bin with args in dir in its own process group, with
// stdout and stderr appended to outPath.
func startProcess(bin, dir, outPath string, env []string, args ...string) (*process, error) {
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(CleanEnv(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// CleanEnv is the test's environment without WALRUS_* variables, so a
// developer's shell settings do not leak into the processes under test.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WALRUS_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stopped reports whether the exit was caused by a test's signal (SIGTERM
// or SIGKILL) rather than the process dying by itself.
func (p *process) stopped() bool {
	return p.requested.Load()
}

func (p *process) signalGroup(sig syscall.Signal) {
	p.requested.Store(true)
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Tail returns the last n lines of a file (or the error reading it).
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1. All listeners
// are held until every port is picked, so the ports differ from each other.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
