package tests

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// TestReplicationThroughput compares produce throughput with
// replication_factor 3 / ack_quorum 2 against replication_factor 1 on a
// 3-node cluster, alternating runs in one sitting. It is a measurement,
// not a check: set WALRUS_REPL_BENCH=1 to run it (README numbers).
func TestReplicationThroughput(t *testing.T) {
	skipShort(t)
	if os.Getenv("WALRUS_REPL_BENCH") == "" {
		t.Skip("set WALRUS_REPL_BENCH=1 to measure replication throughput")
	}
	type report struct {
		MsgsPerSec float64 `json:"msgs_per_sec"`
		Errors     uint64  `json:"errors"`
		Latency    struct {
			P99 float64 `json:"p99"`
		} `json:"latency_ms"`
	}
	run := func(rf, ack int) report {
		c := testcluster.Start(t, testcluster.Options{Nodes: 3, Extra: map[string]any{"replication_factor": rf, "ack_quorum": ack}})
		addrs := make([]string, 0, 3)
		for _, n := range c.Nodes {
			addrs = append(addrs, n.ClientAddr)
		}
		out, errOut, code := testcluster.RunCLI(t, "bench", "produce", "--addrs", strings.Join(addrs, ","),
			"--clients", "16", "--pipeline", "64", "--messages", "200000", "--size", "100", "--json")
		if code != 0 {
			t.Fatalf("bench rf=%d: exit %d: %s", rf, code, errOut)
		}
		var r report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("bench output %q: %v", out, err)
		}
		c.StopAll()
		return r
	}
	for round := range 2 {
		r1 := run(1, 1)
		r3 := run(3, 2)
		t.Logf("round %d: rf=1 %.0f msgs/s (p99 %.1f ms, %d errors); rf=3/ack=2 %.0f msgs/s (p99 %.1f ms, %d errors); ratio %.2f",
			round, r1.MsgsPerSec, r1.Latency.P99, r1.Errors, r3.MsgsPerSec, r3.Latency.P99, r3.Errors, r3.MsgsPerSec/r1.MsgsPerSec)
	}
}
