package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/walrus-go/walrus/node/access"
	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/diskguard"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/placement"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/server"
	"github.com/walrus-go/walrus/node/tlsconf"
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
	// KafkaHost/KafkaPort is the Kafka-protocol listener (node/kafka):
	// port 0 = off, -1 = any free port (tests). With users it requires
	// SASL; ACLs apply to it as to the client port.
	KafkaHost string
	KafkaPort int
	// HTTPHost/HTTPPort serve /metrics, /healthz and /readyz; port 0 = off.
	HTTPHost string
	HTTPPort int
	// HTTPPprof also serves Go's runtime profiles under /debug/pprof/.
	HTTPPprof bool
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
	// Retention are the limits of topics that do not set their own
	// (zero: unlimited), applied by the Raft leader.
	Retention metadata.Limits
	// MaxSegmentBytes and MaxSegmentAge roll an open segment over by size
	// and age too (0: off).
	MaxSegmentBytes uint64
	MaxSegmentAge   time.Duration
	// RetentionInterval is how often the Raft leader applies the limits
	// (default 5 s).
	RetentionInterval time.Duration
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
	// MinFreeBytes and MinFreePercent (0..100) of the file system holding
	// DataDir: below either, this node refuses appends, its own and
	// replicas', with a *wire.DiskFullError until space is freed; 0 turns
	// a threshold off. Defaults 256 MiB and 5.
	MinFreeBytes   uint64
	MinFreePercent float64
	// DiskStat, when set, replaces statfs of DataDir (tests inject a full
	// disk through it; see node/nodetest).
	DiskStat diskguard.StatFunc
	// TLS is the certificate of the client and HTTP listeners; a CAFile
	// makes them require client certificates from it. ClusterTLS is the
	// mutual TLS of the Raft/RPC port (CAFile, the cluster CA, required).
	// Empty CertFile: plaintext. See node/tlsconf and docs/security.md.
	TLS, ClusterTLS tlsconf.Files
	// TLSReloadInterval is how often the TLS files are checked for
	// changes (SIGHUP reloads at once through ReloadTLS). Default 5s.
	TLSReloadInterval time.Duration
	// Metrics is the instrumentation to update; nil makes the node create
	// its own (metrics.New(NodeID)).
	Metrics *metrics.Metrics
	// Intercept, when set, sees every internal RPC this node receives and
	// may refuse it (fault injection for tests; see node/nodetest).
	Intercept wire.Interceptor
	// Security is client authentication and authorization (users, ACLs,
	// the exposure check); the zero value is open.
	Security access.Config
}

// minFrameBytes is the smallest client frame limit the node can work with
// (a command with a short topic and payload fits).
const minFrameBytes = 64

// DefaultConfig returns a fresh Config with the defaults.
func DefaultConfig() Config {
	return Config{
		NodeID:               1,
		DataDir:              "./data",
		RaftHost:             "127.0.0.1",
		RaftPort:             6000,
		ClientHost:           "127.0.0.1",
		ClientPort:           8080,
		KafkaHost:            "127.0.0.1",
		HTTPHost:             "127.0.0.1",
		MaxSegmentEntries:    1_000_000,
		MonitorInterval:      10 * time.Second,
		LeaseSyncInterval:    100 * time.Millisecond,
		MaxFrameBytes:        protocol.DefaultMaxFrameBytes,
		AutoCreateTopics:     true,
		ReplicationFactor:    3,
		AckQuorum:            0,
		RetentionInterval:    5 * time.Second,
		ReplicaRepairTimeout: time.Minute,
		FailureTimeout:       5 * time.Second,
		CursorCommitInterval: 100 * time.Millisecond,
		MinFreeBytes:         diskguard.DefaultMinFreeBytes,
		MinFreePercent:       diskguard.DefaultMinFreePercent,
		TLSReloadInterval:    tlsconf.DefaultReloadInterval,
	}
}

// Validate checks the node's own invariants: what a programmatic caller
// could get wrong that would break the node (a zero id, a zero duration
// that would spin a loop, an ack quorum the replica set cannot give).
// Policy bounds on user input (ranges meant to catch typos) are the
// business of package configs, which validates the YAML, env and flags
// before the daemon builds a Config.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.NodeID == 0 {
		bad("NodeID 0: must be >= 1")
	}
	if c.DataDir == "" {
		bad("DataDir: must not be empty")
	}
	if c.RaftHost == "" {
		bad("RaftHost: must not be empty")
	}
	if c.ClientHost == "" {
		bad("ClientHost: must not be empty")
	}
	if c.KafkaPort < -1 || c.KafkaPort > 65535 {
		bad("KafkaPort %d: must be 0 (off), -1 (any free port) or 1..65535", c.KafkaPort)
	}
	for name, p := range map[string]int{"RaftPort": c.RaftPort, "ClientPort": c.ClientPort, "HTTPPort": c.HTTPPort} {
		if p < 0 || p > 65535 {
			bad("%s %d: must be 0..65535", name, p)
		}
	}
	if (c.RaftHost == "0.0.0.0" || c.RaftHost == "::") && c.RaftAdvertiseHost == "" {
		bad("RaftAdvertiseHost: required when RaftHost is %s", c.RaftHost)
	}
	if c.MaxSegmentEntries == 0 {
		bad("MaxSegmentEntries 0: must be >= 1")
	}
	for name, d := range map[string]time.Duration{
		"MonitorInterval": c.MonitorInterval, "LeaseSyncInterval": c.LeaseSyncInterval,
		"ReplicaRepairTimeout": c.ReplicaRepairTimeout, "FailureTimeout": c.FailureTimeout,
		"CursorCommitInterval": c.CursorCommitInterval, "TLSReloadInterval": c.TLSReloadInterval,
	} {
		if d <= 0 {
			bad("%s %v: must be > 0", name, d)
		}
	}
	if c.MaxFrameBytes < minFrameBytes || c.MaxFrameBytes > server.MaxFrameBytesMax {
		bad("MaxFrameBytes %d: must be %d..%d", c.MaxFrameBytes, minFrameBytes, server.MaxFrameBytesMax)
	}
	if !(c.MinFreePercent >= 0 && c.MinFreePercent <= 100) {
		bad("MinFreePercent %v: must be 0..100", c.MinFreePercent)
	}
	if c.RetentionInterval <= 0 {
		bad("RetentionInterval %v: must be > 0", c.RetentionInterval)
	}
	if c.Retention.MaxAgeMs < 0 {
		bad("Retention.MaxAgeMs %d: must be >= 0", c.Retention.MaxAgeMs)
	}
	if c.ReplicationFactor < 1 || c.ReplicationFactor > placement.MaxReplicationFactor {
		bad("ReplicationFactor %d: must be 1..%d", c.ReplicationFactor, placement.MaxReplicationFactor)
	}
	if c.AckQuorum < 0 || c.AckQuorum > c.ReplicationFactor {
		bad("AckQuorum %d: must be 0 (majority) or 1..ReplicationFactor (%d)", c.AckQuorum, c.ReplicationFactor)
	} else if err := placement.CheckReplication(c.ReplicationFactor, c.AckQuorum); err != nil {
		bad("AckQuorum: %w", err)
	}
	sec := c.Security
	sec.TLS = sec.TLS || c.TLS.Enabled()
	if err := sec.CheckExposure("client.host", c.ClientHost); err != nil {
		errs = append(errs, err)
	}
	if err := sec.CheckExposure("http.host", c.HTTPHost); err != nil && c.HTTPPort != 0 {
		errs = append(errs, err)
	}
	if err := sec.CheckExposure("kafka.host", c.KafkaHost); err != nil && c.KafkaPort != 0 {
		errs = append(errs, err)
	}
	if err := c.Server.Validate(); err != nil {
		bad("Server: %w", err)
	}
	return errors.Join(errs...)
}
