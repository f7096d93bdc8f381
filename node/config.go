package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/server"
	"github.com/walrus-go/walrus/node/wire"
)

// Config is everything a node needs. Units are last in names; zero ports
// mean "pick a free port" (tests), except HTTPPort where 0 turns the HTTP
// endpoint off.
type Config struct {
	// NodeID is this node's id (>= 1), unique in the cluster.
	NodeID uint64
	// DataDir holds node_<id>/raft_meta (Raft). The store's own directory
	// is the caller's business.
	DataDir string
	// RaftHost/RaftPort is where the Raft transport and the internal RPC
	// listen (one port, multiplexed). Default 127.0.0.1:6000.
	RaftHost string
	RaftPort int
	// RaftAdvertiseHost is the host peers use to reach this node; default
	// RaftHost (must be set when RaftHost is 0.0.0.0 or ::).
	RaftAdvertiseHost string
	// ClientHost/ClientPort is the client protocol listener. Default
	// 127.0.0.1:8080.
	ClientHost string
	ClientPort int
	// HTTPHost/HTTPPort serve /metrics, /healthz and /readyz; port 0 = off.
	HTTPHost string
	HTTPPort int
	// Join lists host:port Raft addresses of existing members. Ignored
	// when this node already has Raft state.
	Join []string
	// MaxSegmentEntries seals a segment once it holds this many entries.
	// Default 1000000.
	MaxSegmentEntries uint64
	// MonitorInterval is the rollover monitor period. Default 10s.
	MonitorInterval time.Duration
	// LeaseSyncInterval is the lease sync period. Default 100ms.
	LeaseSyncInterval time.Duration
	// MaxFrameBytes is the largest client frame. Default
	// protocol.DefaultMaxFrameBytes.
	MaxFrameBytes int
	// AutoCreateTopics makes PUT to an unknown topic create it. Default true.
	AutoCreateTopics bool
	// ReplicationFactor is the default number of nodes that store each
	// segment of a new topic (capped at the live voters when a segment
	// opens). Default 3.
	ReplicationFactor int
	// AckQuorum is the default number of replicas, the leader included,
	// that must hold an entry before PUT answers OK; 0 = a majority of the
	// segment's replica set. Default 0.
	AckQuorum int
	// ReplicaRepairTimeout is how long a replica of a sealed segment may be
	// down before the Raft leader copies the segment to another node.
	// Default 60s.
	ReplicaRepairTimeout time.Duration
	// FailureTimeout is how long a node may miss heartbeats before the
	// Raft leader considers it down. Default 5s.
	FailureTimeout time.Duration
	// CursorCommitInterval is how often dirty shared cursors are committed
	// through Raft (the redelivery window after a crash). Default 100ms.
	CursorCommitInterval time.Duration
	// HandoffOnShutdown makes a clean shutdown roll every open segment this
	// node leads over to the next live voter at its exact count, so writers
	// move at once (rolling restarts) instead of after FailureTimeout. Off
	// by default: it changes the topology at every stop, and a whole-cluster
	// stop/start should come back with the metadata it had. Default false.
	HandoffOnShutdown bool
	// RaftTiming overrides Raft timeouts; zero fields use the loopback
	// defaults of consensus.DefaultTiming.
	RaftTiming consensus.Timing
	// Server tunes the client listener; zero fields take server defaults
	// (MaxFrameBytes above wins over Server.MaxFrameBytes).
	Server server.Config
	// Metrics is the instrumentation to update; nil makes the node create
	// its own (metrics.New(NodeID)).
	Metrics *metrics.Metrics
	// Intercept, when set, sees every internal RPC this node receives and
	// may refuse it (fault injection for tests; see node/nodetest).
	Intercept wire.Interceptor
}

// maxReplicationFactor bounds replication_factor (and a topic's rf=).
const maxReplicationFactor = 7

// DefaultConfig returns a fresh Config with the defaults.
func DefaultConfig() Config {
	return Config{
		NodeID:               1,
		DataDir:              "./data",
		RaftHost:             "127.0.0.1",
		RaftPort:             6000,
		ClientHost:           "127.0.0.1",
		ClientPort:           8080,
		HTTPHost:             "127.0.0.1",
		MaxSegmentEntries:    1_000_000,
		MonitorInterval:      10 * time.Second,
		LeaseSyncInterval:    100 * time.Millisecond,
		MaxFrameBytes:        protocol.DefaultMaxFrameBytes,
		AutoCreateTopics:     true,
		ReplicationFactor:    3,
		AckQuorum:            0,
		ReplicaRepairTimeout: time.Minute,
		FailureTimeout:       5 * time.Second,
		CursorCommitInterval: 100 * time.Millisecond,
	}
}

// Validate reports every bad field, naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.NodeID == 0 {
		bad("node_id 0: must be >= 1")
	}
	if c.DataDir == "" {
		bad("data_dir: must not be empty")
	}
	if c.RaftHost == "" {
		bad("raft_host: must not be empty")
	}
	for key, p := range map[string]int{"raft_port": c.RaftPort, "client_port": c.ClientPort, "http_port": c.HTTPPort} {
		if p < 0 || p > 65535 {
			bad("%s %d: must be 0..65535", key, p)
		}
	}
	if (c.RaftHost == "0.0.0.0" || c.RaftHost == "::") && c.RaftAdvertiseHost == "" {
		bad("raft_advertise_host: required when raft_host is %s", c.RaftHost)
	}
	if c.ClientHost == "" {
		bad("client_host: must not be empty")
	}
	if c.MaxSegmentEntries == 0 {
		bad("max_segment_entries 0: must be >= 1")
	}
	if c.MonitorInterval < 10*time.Millisecond || c.MonitorInterval > time.Hour {
		bad("monitor_interval %v: must be 10ms..1h", c.MonitorInterval)
	}
	if c.LeaseSyncInterval < time.Millisecond || c.LeaseSyncInterval > time.Minute {
		bad("lease_sync_interval %v: must be 1ms..1m", c.LeaseSyncInterval)
	}
	if c.MaxFrameBytes < 64 || c.MaxFrameBytes > server.MaxFrameBytesMax {
		bad("max_frame_bytes %d: must be 64..%d", c.MaxFrameBytes, server.MaxFrameBytesMax)
	}
	if c.ReplicationFactor < 1 || c.ReplicationFactor > maxReplicationFactor {
		bad("replication_factor %d: must be 1..%d", c.ReplicationFactor, maxReplicationFactor)
	}
	if c.AckQuorum < 0 || c.AckQuorum > c.ReplicationFactor {
		bad("ack_quorum %d: must be 0 (majority) or 1..replication_factor (%d)", c.AckQuorum, c.ReplicationFactor)
	}
	if c.ReplicaRepairTimeout < time.Second || c.ReplicaRepairTimeout > 24*time.Hour {
		bad("replica_repair_timeout %v: must be 1s..24h", c.ReplicaRepairTimeout)
	}
	if c.FailureTimeout < 100*time.Millisecond || c.FailureTimeout > 10*time.Minute {
		bad("failure_timeout %v: must be 100ms..10m", c.FailureTimeout)
	}
	if c.CursorCommitInterval < time.Millisecond || c.CursorCommitInterval > time.Minute {
		bad("cursor_commit_interval %v: must be 1ms..1m", c.CursorCommitInterval)
	}
	if err := c.Server.Validate(); err != nil {
		bad("server: %w", err)
	}
	return errors.Join(errs...)
}
