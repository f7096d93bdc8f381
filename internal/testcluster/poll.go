package testcluster

import (
	"testing"
	"time"
)

// PollInterval is how often Eventually re-checks a condition.
const PollInterval = 50 * time.Millisecond

// Eventually calls cond until it returns nil or timeout passes, then fails
// the test with cond's last error.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("condition not met within %v: %v", timeout, err)
	}
}

// Poll calls cond until it returns nil or timeout passes and returns the
// last error (nil on success).
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		<-tick.C
	}
}
