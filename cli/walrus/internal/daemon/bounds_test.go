package daemon

import (
	"testing"

	"github.com/walrus-go/walrus/configs"
)

// TestAcceptedConfigsBuildValidNodes: whatever configs accepts, the node
// accepts too once NodeConfig maps it: the user-facing bounds live in
// configs and the node's invariants never refuse a value they allow.
func TestAcceptedConfigsBuildValidNodes(t *testing.T) {
	edges := map[string]func(*configs.Config){
		"defaults":      func(*configs.Config) {},
		"fastest loops": func(c *configs.Config) { c.LeaseSyncMS = 10; c.MonitorCheckMS = 10; c.CursorCommitMS = 1 },
		"slowest loops": func(c *configs.Config) {
			c.LeaseSyncMS = 60_000
			c.MonitorCheckMS = 3_600_000
			c.CursorCommitMS = 60_000
		},
		"short timeouts": func(c *configs.Config) { c.FailureTimeoutMS = 100; c.ReplicaRepairTimeoutMS = 1_000 },
		"long timeouts":  func(c *configs.Config) { c.FailureTimeoutMS = 600_000; c.ReplicaRepairTimeoutMS = 86_400_000 },
		"small frames":   func(c *configs.Config) { c.Client.MaxFrameBytes = 1 << 10 },
		"large frames":   func(c *configs.Config) { c.Client.MaxFrameBytes = 256 << 20 },
		"one copy":       func(c *configs.Config) { c.ReplicationFactor = 1; c.AckQuorum = 1 },
		"most copies":    func(c *configs.Config) { c.ReplicationFactor = 7; c.AckQuorum = 2 },
		"tiny segments":  func(c *configs.Config) { c.MaxSegmentEntries = 1 },
	}
	for name, edge := range edges {
		c := configs.Default()
		edge(&c)
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: configs refuses: %v", name, err)
		}
		if err := NodeConfig(c).Validate(); err != nil {
			t.Errorf("%s: configs accepts what the node refuses: %v", name, err)
		}
	}
	// And the combination recovery cannot honour is refused at the first
	// layer, with the key named.
	c := configs.Default()
	c.ReplicationFactor, c.AckQuorum = 3, 1
	if err := c.Validate(); err == nil {
		t.Fatal("configs accepts replication_factor 3 with ack_quorum 1")
	}
}
