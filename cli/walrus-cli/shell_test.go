package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// With stdin not a terminal the shell reads commands line by line, prints
// the replies plainly and exits at end of input.
func TestShellScripted(t *testing.T) {
	f := startFake(t)
	in := strings.Join([]string{
		"register logs",
		"put logs hello world",
		"PuT logs   spaced  out ",
		"get logs",
		"GET logs",
		"get logs",
		"state nope",
		"",
		"# a comment",
		"metrics",
		"help",
		"exit",
		"put logs never sent",
	}, "\n") + "\n"
	r := cliWith(t, runOpts{stdin: in}, "--addr", f.addr)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Fatalf("colour codes in piped output: %q", r.stdout)
	}
	want := "OK\nOK\nOK\nOK hello world\nOK   spaced  out\nEMPTY\nERR unknown topic nope\n{\n  \"id\": 1,"
	if !strings.HasPrefix(r.stdout, want) {
		t.Fatalf("stdout:\n%s\nwant prefix:\n%s", r.stdout, want)
	}
	if !strings.Contains(r.stdout, "Shell commands: help, exit, quit") {
		t.Fatalf("help missing:\n%s", r.stdout)
	}
	if n := f.count("logs"); n != 0 {
		t.Fatalf("lines after exit were sent: %d messages in logs", n)
	}
	// A node that cannot be reached ends a scripted session with exit 3.
	r = cliWith(t, runOpts{stdin: "metrics\n"}, "--addr", closedAddr(t))
	if r.code != 3 {
		t.Fatalf("unreachable: %s", r)
	}
}

// term is a walrus-cli process on a pseudo-terminal.
type term struct {
	t      *testing.T
	master *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	seen   int // bytes of the escape-free output already matched by expect
	readWG sync.WaitGroup
}

func startTerm(t *testing.T, env []string, args ...string) *term {
	t.Helper()
	master, slave, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	cmd := exec.Command(cliPath(), args...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	tm := &term{t: t, master: master, cmd: cmd}
	tm.readWG.Go(func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			tm.mu.Lock()
			tm.out.Write(buf[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	})
	t.Cleanup(func() {
		if tm.cmd.ProcessState == nil {
			tm.cmd.Process.Kill()
			tm.cmd.Wait()
		}
		master.Close()
		tm.readWG.Wait()
		if t.Failed() {
			t.Logf("terminal output:\n%q", tm.output())
		}
	})
	return tm
}

func (tm *term) output() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.out.String()
}

func (tm *term) typeLine(s string) {
	tm.t.Helper()
	if _, err := tm.master.Write([]byte(s + "\r")); err != nil {
		tm.t.Fatal(err)
	}
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// expect waits until the output after the previous match contains want
// (escape codes removed).
func (tm *term) expect(want string) {
	tm.t.Helper()
	tm.expectWithin(10*time.Second, want)
}

// expectWithin is expect with its own deadline.
func (tm *term) expectWithin(d time.Duration, want string) {
	tm.t.Helper()
	err := testcluster.Poll(d, func() error {
		tm.mu.Lock()
		defer tm.mu.Unlock()
		plain := ansi.ReplaceAllString(tm.out.String(), "")
		if tm.seen > len(plain) {
			tm.seen = len(plain)
		}
		if i := strings.Index(plain[tm.seen:], want); i >= 0 {
			tm.seen += i + len(want)
			return nil
		}
		return errors.New("not yet")
	})
	if err != nil {
		plain := ansi.ReplaceAllString(tm.output(), "")
		tm.t.Fatalf("terminal never showed %q; after the last match:\n%q", want, plain[min(tm.seen, len(plain)):])
	}
}

func (tm *term) wait(timeout time.Duration) int {
	tm.t.Helper()
	done := make(chan error, 1)
	go func() { done <- tm.cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			tm.t.Fatal(err)
		}
		return 0
	case <-time.After(timeout):
		tm.cmd.Process.Kill()
		<-done
		tm.t.Fatalf("walrus-cli did not exit within %v", timeout)
		return -1
	}
}

func TestShellOnATerminal(t *testing.T) {
	f := startFake(t)
	home := t.TempDir()
	env := []string{"HOME=" + home, "TERM=xterm"}
	tm := startTerm(t, env, "--addr", f.addr)
	tm.expect("Connected to " + f.addr)
	tm.expect("walrus " + f.addr + "> ")
	tm.typeLine("put logs hello world")
	tm.expect("OK")
	tm.typeLine("GET logs")
	tm.expect("OK hello world")
	tm.typeLine("get logs")
	tm.expect("EMPTY")
	tm.typeLine("metrics")
	tm.expect(`  "state": "Leader",`) // pretty-printed
	tm.typeLine("state missing")
	tm.expect("ERR unknown topic missing")
	tm.typeLine("help")
	tm.expect("Shell commands: help, exit, quit")
	if out := tm.output(); !strings.Contains(out, "\x1b[32mOK") {
		t.Errorf("no colour on a terminal")
	}
	tm.master.Write([]byte{4}) // Ctrl-D
	if code := tm.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d after Ctrl-D", code)
	}
	hist, err := os.ReadFile(filepath.Join(home, ".walrus_cli_history"))
	if err != nil || !strings.Contains(string(hist), "put logs hello world\n") || !strings.Contains(string(hist), "GET logs\n") {
		t.Fatalf("history file: %q, %v", hist, err)
	}

	// A second session sees the history (up arrow recalls the last line)
	// and quit ends it.
	f.put("logs", "again")
	tm = startTerm(t, env, "--addr", f.addr)
	tm.expect("> ")
	tm.master.Write([]byte("\x1b[A")) // up: "help"
	tm.master.Write([]byte("\x1b[A")) // up: "state missing"
	tm.master.Write([]byte("\x1b[A")) // up: "metrics"
	tm.master.Write([]byte("\x1b[A")) // up: "get logs"
	tm.master.Write([]byte("\r"))
	tm.expect("OK again")
	tm.typeLine("quit")
	if code := tm.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d after quit", code)
	}
}

func TestShellSurvivesNodeRestart(t *testing.T) {
	// The shell redials after a failed request instead of exiting.
	addr := closedAddr(t)
	tm := startTerm(t, []string{"HOME=" + t.TempDir(), "TERM=xterm"}, "--addr", addr, "--timeout", "2s")
	tm.expect("> ")
	tm.typeLine("metrics")
	tm.expect("cannot reach " + addr)
	startFakeAt(t, addr)
	tm.typeLine("metrics")
	tm.expect(`"state": "Leader"`)
	tm.typeLine("exit")
	if code := tm.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// On a terminal bench shows a progress bar on stderr; piped (the other
// bench tests) it does not.
func TestBenchProgressBarOnATerminal(t *testing.T) {
	tm := startTerm(t, []string{"TERM=xterm"}, "bench", "produce", "--echo", "--messages", "1500000", "--clients", "4")
	tm.expectWithin(60*time.Second, "throughput") // ~10 s on a busy 2-core machine
	if code := tm.wait(60 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	out := tm.output()
	if !strings.Contains(out, "msgs/s)") || !strings.Contains(out, "%") {
		t.Fatalf("no progress bar in terminal output: %q", out)
	}
}

// watch redraws on a terminal and Ctrl-C (SIGINT from the terminal) ends it
// with exit 0; Ctrl-C at the shell prompt only clears the line.
func TestWatchAndShellCtrlCOnATerminal(t *testing.T) {
	f := startFake(t)
	f.put("logs", "x")
	tm := startTerm(t, []string{"TERM=xterm"}, "--addr", f.addr, "watch", "logs", "--interval", "50ms")
	tm.expect("Every 50ms: STATE logs")
	tm.expect("Every 50ms: STATE logs") // a second refresh
	if out := tm.output(); !strings.Contains(out, "\x1b[H\x1b[2J") {
		t.Fatalf("watch did not clear the screen on a terminal: %q", out)
	}
	tm.master.Write([]byte{3}) // Ctrl-C
	if code := tm.wait(10 * time.Second); code != 0 {
		t.Fatalf("watch exit %d after Ctrl-C, want 0", code)
	}

	tm = startTerm(t, []string{"HOME=" + t.TempDir(), "TERM=xterm"}, "--addr", f.addr)
	tm.expect("> ")
	tm.master.Write([]byte("half typed"))
	tm.master.Write([]byte{3})
	tm.expect("^C")
	tm.typeLine("get logs")
	tm.expect("OK x")
	tm.typeLine("exit")
	if code := tm.wait(10 * time.Second); code != 0 {
		t.Fatalf("shell exit %d", code)
	}
	if strings.Contains(tm.output(), "unknown command") {
		t.Fatalf("the line cleared with Ctrl-C was sent: %q", tm.output())
	}
}
