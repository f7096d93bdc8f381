package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/status"
)

func TestConsumeWithGroup(t *testing.T) {
	f := fakeWithLog(t, "p0", "p1 with spaces", "p2", "p3", "p4")
	a := "--addr=" + f.addr

	// A new group starts at --from (earliest by default) and says so.
	r := cli(t, a, "consume", "--group", "g", "logs", "--count", "2")
	expect(t, r, 0, "p0\np1 with spaces\n")
	if !strings.Contains(r.stderr, "group g had nothing committed on logs; starting at offset 0 (--from earliest)") {
		t.Fatalf("no placement note: %s", r)
	}
	if got := f.committedOffset("g", "logs"); got != 2 {
		t.Fatalf("after 2 acknowledged entries the group is at %d", got)
	}
	// --count caps the READ; no ack wait means the node's default.
	if f.sentWith("READ g logs 2") != 1 || f.sentWith("ACK g logs 0 1") != 1 {
		t.Fatalf("requests: %q", f.logRequests())
	}

	// A group with a position ignores --from and says so.
	r = cli(t, a, "consume", "-g", "g", "logs", "--from", "latest", "--count", "2", "--max", "5", "--ack-wait", "1500ms")
	expect(t, r, 0, "p2\np3\n")
	if !strings.Contains(r.stderr, "group g continues on logs at its committed offset 2; --from latest ignored") {
		t.Fatalf("no note about --from: %s", r)
	}
	if f.sentWith("READ g logs 2 1500") != 1 || f.sentWith("COMMIT g") != 1 {
		t.Fatalf("requests: %q", f.logRequests())
	}
	// Without an explicit --from there is nothing to say.
	r = cli(t, a, "consume", "-g", "g", "logs", "--count", "1", "--json")
	var e status.Entry
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &e) != nil || e != (status.Entry{Offset: 4, TimestampMs: fakeBaseMs + 4000, Deliveries: 1, Payload: "p4"}) || r.stderr != "" {
		t.Fatalf("--json: %s", r)
	}

	// --from places new groups: an offset, a time, latest.
	expect(t, cli(t, a, "consume", "-g", "at-offset", "logs", "--from", "3", "--count", "1"), 0, "p3\n")
	expect(t, cli(t, a, "consume", "-g", "at-time", "logs", "--from", rfc3339(fakeBaseMs+1000), "--count", "1"), 0, "p1 with spaces\n")
	if got := f.committedOffset("at-time", "logs"); got != 2 {
		t.Fatalf("at-time group at %d", got)
	}
	// (--from latest: TestConsumeFollowsUntilCtrlC.)
}

func TestConsumeWithoutGroup(t *testing.T) {
	f := fakeWithLog(t, "p0", "p1", "p2", "p3")
	a := "--addr=" + f.addr
	expect(t, cli(t, a, "consume", "logs", "--count", "3", "--max", "2"), 0, "p0\np1\np2\n")
	if f.sentWith("FETCH logs 0 2") != 1 || f.sentWith("FETCH logs 2 1") != 1 {
		t.Fatalf("requests: %q", f.logRequests())
	}
	expect(t, cli(t, a, "consume", "logs", "--from", "2", "--count", "2"), 0, "p2\np3\n")
	expect(t, cli(t, a, "consume", "logs", "--from", rfc3339(fakeBaseMs+1000), "--count", "1"), 0, "p1\n")
	r := cli(t, a, "consume", "logs", "--from", "3", "--count", "1", "--json")
	expect(t, r, 0, `{"offset":3,"timestamp_ms":1764111114000,"payload":"p3"}`+"\n")
	if n := f.sentWith("COMMIT") + f.sentWith("READ"); n != 0 {
		t.Fatalf("consume without a group touched groups: %q", f.logRequests())
	}
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// startCLI runs walrus-cli in the background; wait returns its exit code.
func startCLI(t *testing.T, args ...string) (cmd *exec.Cmd, stdout, stderr *syncBuffer, wait func() int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	cmd = exec.CommandContext(ctx, cliPath(), args...)
	cmd.Env = cleanEnv()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	code := 0
	go func() {
		defer close(done)
		err := cmd.Wait()
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return cmd, stdout, stderr, func() int {
		<-done
		return code
	}
}

// consume follows the topic until Ctrl-C, which ends it with exit 0 after
// acknowledging what it printed.
func TestConsumeFollowsUntilCtrlC(t *testing.T) {
	for _, tc := range []struct {
		name  string
		group []string
	}{{"group", []string{"--group", "live"}}, {"no group", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			f := fakeWithLog(t, "old")
			args := append([]string{"--addr", f.addr, "consume", "logs", "--from", "latest", "--poll", "10ms"}, tc.group...)
			cmd, stdout, stderr, wait := startCLI(t, args...)
			// Wait until it has placed itself (and is polling), then append.
			waitFor(t, "the first poll", 20*time.Second, func() bool {
				return f.sentWith("READ live logs") > 0 || f.sentWith("FETCH logs 1") > 0
			})
			f.put("logs", "new 1")
			f.put("logs", "new 2")
			waitFor(t, "both new entries on stdout", 20*time.Second, func() bool { return stdout.String() == "new 1\nnew 2\n" })
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if code := wait(); code != 0 {
				t.Fatalf("Ctrl-C: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
			}
			if tc.group != nil {
				if got := f.committedOffset("live", "logs"); got != 3 {
					t.Fatalf("printed entries not acknowledged: group at %d", got)
				}
			}
		})
	}
}

// Entries read but not acknowledged (the consumer was killed) go to the
// next reader of the group once their lease ends.
func TestConsumeRedeliversUnacknowledged(t *testing.T) {
	f := fakeWithLog(t, "p0", "p1")
	f.mu.Lock()
	// A reader that died holding p0 with a short lease.
	f.log.leases[groupTopic{"g", "logs"}] = map[uint64]time.Time{0: time.Now().Add(50 * time.Millisecond)}
	f.log.delivered[groupTopic{"g", "logs"}] = map[uint64]uint32{0: 1}
	f.log.committed[groupTopic{"g", "logs"}] = 0
	f.mu.Unlock()
	r := cli(t, "--addr", f.addr, "consume", "-g", "g", "logs", "--count", "2", "--json", "--poll", "10ms")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var first, second status.Entry
	if r.code != 0 || len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &first) != nil || json.Unmarshal([]byte(lines[1]), &second) != nil {
		t.Fatalf("%s", r)
	}
	// p1 comes first unless the lease ran out before consume started.
	if first.Offset == 0 {
		first, second = second, first
	}
	if first.Offset != 1 || first.Deliveries != 1 || second.Offset != 0 || second.Deliveries != 2 {
		t.Fatalf("want p1 and p0 redelivered (deliveries 2); got %+v, %+v", first, second)
	}
	if got := f.committedOffset("g", "logs"); got != 2 {
		t.Fatalf("group at %d", got)
	}
}
