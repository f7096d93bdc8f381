package tests

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

var (
	soak         = flag.Bool("soak", false, "run the long soak test")
	soakDuration = flag.Duration("soak.duration", 2*time.Minute, "how long the soak test writes")
)

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process test; skipped with -short")
	}
}

// do sends one request and fails the test on a transport error.
func do(t testing.TB, c *testcluster.Conn, line string) string {
	t.Helper()
	r, err := c.Do(line)
	if err != nil {
		t.Fatalf("%s: %v", abbrev(line), err)
	}
	return r
}

// mustOK sends one request and fails unless the reply is exactly "OK".
func mustOK(t testing.TB, c *testcluster.Conn, line string) {
	t.Helper()
	if r := do(t, c, line); r != "OK" {
		t.Fatalf("%s: got %q, want OK", abbrev(line), r)
	}
}

// drain GETs topic until EMPTY and returns the payloads in delivery order.
// limit bounds the reads so a node that never says EMPTY fails the test.
func drain(t testing.TB, c *testcluster.Conn, topic string, limit int) []string {
	t.Helper()
	var got []string
	for range limit + 1 {
		r := do(t, c, "GET "+topic)
		switch {
		case r == "EMPTY":
			return got
		case strings.HasPrefix(r, "OK "):
			got = append(got, r[3:])
		default:
			t.Fatalf("GET %s after %d entries: %q", topic, len(got), r)
		}
	}
	t.Fatalf("GET %s: still not EMPTY after %d entries", topic, limit)
	return nil
}

// putMany PUTs payloads in order with one request in flight, failing on any
// reply but OK.
func putMany(t testing.TB, c *testcluster.Conn, topic string, payloads []string) {
	t.Helper()
	for _, p := range payloads {
		mustOK(t, c, "PUT "+topic+" "+p)
	}
}

func seq(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("%s-%05d", prefix, from+i)
	}
	return out
}

func sameList(t testing.TB, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d entries, want %d (first got %q)", what, len(got), len(want), first(got))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: entry %d is %q, want %q", what, i, got[i], want[i])
		}
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func abbrev(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
