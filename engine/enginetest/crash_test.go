package enginetest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/backends/memstore"
	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/engine/enginetest"
)

// envSelfTest selects, in a re-executed test binary, the Crash run that
// TestCrashFailures expects to fail.
const envSelfTest = "WALRUS_ENGINETEST_CRASH_SELFTEST"

// TestCrashFailures proves that Crash fails where it must: against a store
// that forgets everything on reopen (memstore, opened anew each time), and
// when the child cannot write. Each case runs Crash in a child test binary,
// since a failing Crash fails its test.
func TestCrashFailures(t *testing.T) {
	forgetful := func(testing.TB, string, engine.Options) (engine.SegmentStore, error) { return memstore.New(), nil }
	cases := []struct {
		name string
		h    enginetest.CrashHarness
		want string
	}{
		{
			name: "LostAcknowledgedEntries",
			h:    enginetest.CrashHarness{Open: forgetful, Kills: 1},
			want: "were acknowledged",
		},
		{
			name: "ChildFails",
			h: enginetest.CrashHarness{Open: forgetful, Kills: 1, BatchEntries: func(_ engine.SegmentID, count uint64) int {
				if count > 100 {
					return 0
				}
				return 7
			}},
			want: "child exited by itself",
		},
		{
			name: "InvalidHarness",
			h:    enginetest.CrashHarness{Open: forgetful, Writers: enginetest.CrashWritersMax + 1},
			want: "Writers 65: want 1 to 64",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if os.Getenv(envSelfTest) == c.name {
				enginetest.Crash(t, c.h)
				return
			}
			if os.Getenv(envSelfTest) != "" {
				t.Skip("another case's child")
			}
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashFailures$/^"+c.name+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), envSelfTest+"="+c.name)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), c.want) {
				t.Fatalf("Crash did not fail with %q (exit %v):\n%s", c.want, err, out)
			}
		})
	}
}
