package configs

import (
	"time"

	"github.com/walrus-go/walrus/node/protocol"
)

// Config is everything the walrus daemon reads at start. Field tags are the
// YAML keys; nested structs are YAML sections. Every duration is an integer
// number of milliseconds in a key ending in _ms (the seed's
// WALRUS_MONITOR_CHECK_MS set the convention).
type Config struct {
	// NodeID is this node's Raft server id (>= 1, unique in the cluster).
	NodeID uint64 `mapstructure:"node_id"`
	// DataDir holds node_<id>/user_data (segments) and node_<id>/raft_meta.
	DataDir string `mapstructure:"data_dir"`
	// Join lists host:port Raft addresses of existing members. Empty means
	// bootstrap a new cluster when there is no Raft state on disk.
	Join []string `mapstructure:"join"`

	// MaxSegmentEntries is the entry count at which the monitor seals the
	// open segment and rolls over to the next node.
	MaxSegmentEntries uint64 `mapstructure:"max_segment_entries"`
	// MaxSegmentBytes and MaxSegmentAgeMS also roll a non-empty open
	// segment over by size and age (0: off).
	MaxSegmentBytes uint64 `mapstructure:"max_segment_bytes"`
	MaxSegmentAgeMS int64  `mapstructure:"max_segment_age_ms"`
	// MonitorCheckMS is the rollover monitor period in milliseconds.
	MonitorCheckMS int64 `mapstructure:"monitor_check_ms"`
	// LeaseSyncMS is the period at which a node re-reads which segments it
	// leads from the committed metadata.
	LeaseSyncMS int64 `mapstructure:"lease_sync_ms"`
	// CursorCommitMS is how often advanced GET cursors are committed
	// through Raft: after a crash at most this window is delivered again.
	CursorCommitMS int64 `mapstructure:"cursor_commit_ms"`
	// FailureTimeoutMS is how long a segment leader may be unreachable
	// before its open segment is sealed and moved to a live node.
	FailureTimeoutMS int64 `mapstructure:"failure_timeout_ms"`
	// ReplicationFactor is the number of nodes that store each segment.
	ReplicationFactor int `mapstructure:"replication_factor"`
	// AckQuorum is how many of those must hold an entry before PUT says OK.
	AckQuorum int `mapstructure:"ack_quorum"`
	// ReplicaRepairTimeoutMS is how long a replica may be down before the
	// segments it held are copied to another node.
	ReplicaRepairTimeoutMS int64 `mapstructure:"replica_repair_timeout_ms"`

	// Retention are the default limits of topics (0 = unlimited, the
	// default) and how often the Raft leader applies them.
	Retention RetentionConfig `mapstructure:"retention"`

	Raft    RaftConfig    `mapstructure:"raft"`
	Client  ClientConfig  `mapstructure:"client"`
	HTTP    HTTPConfig    `mapstructure:"http"`
	Kafka   KafkaConfig   `mapstructure:"kafka"`
	Topics  TopicsConfig  `mapstructure:"topics"`
	Storage StorageConfig `mapstructure:"storage"`
	Log     LogConfig     `mapstructure:"log"`

	// Security: TLS for clients and peers, users, ACLs (configs/security.go).
	TLS        TLSConfig        `mapstructure:"tls"`
	ClusterTLS ClusterTLSConfig `mapstructure:"cluster_tls"`
	Users      []UserConfig     `mapstructure:"users"`
	ACLs       []ACLConfig      `mapstructure:"acls"`
	Security   SecurityConfig   `mapstructure:"security"`

	// File is the config file Load read ("" when none). Not a YAML key.
	File string `mapstructure:"-"`
}

// RetentionConfig are the limits of topics that do not set their own
// (CREATE ... max_age_ms=, ALTER); 0 means no limit. Changing them and
// restarting applies them to every such topic.
type RetentionConfig struct {
	MaxAgeMS   int64  `mapstructure:"max_age_ms"`
	MaxBytes   uint64 `mapstructure:"max_bytes"`
	MaxEntries uint64 `mapstructure:"max_entries"`
	// CheckMS is how often the Raft leader applies the limits.
	CheckMS int64 `mapstructure:"check_ms"`
}

// RaftConfig is the Raft (and internal RPC) listener.
type RaftConfig struct {
	Host string `mapstructure:"host"`
	Port int    `mapstructure:"port"`
	// AdvertiseHost is the host other nodes dial; "" means Host.
	AdvertiseHost string `mapstructure:"advertise_host"`
}

// ClientConfig is the Walrus protocol listener.
type ClientConfig struct {
	Host string `mapstructure:"host"`
	Port int    `mapstructure:"port"`
	// MaxFrameBytes bounds one request frame; longer lengths get
	// "ERR invalid frame length" and the connection is closed.
	MaxFrameBytes int `mapstructure:"max_frame_bytes"`
}

// HTTPConfig is the Prometheus /metrics, /healthz and /readyz listener.
type HTTPConfig struct {
	Host string `mapstructure:"host"`
	// Port 0 turns the HTTP endpoint off.
	Port int `mapstructure:"port"`
	// Pprof serves Go's profiles under /debug/pprof/ (off by default).
	Pprof bool `mapstructure:"pprof"`
}

// KafkaConfig is the Kafka-protocol listener (docs/kafka.md). Port 0 (the
// default in a config file) turns it off; the node started with no config
// file listens on NoConfigKafkaPort.
type KafkaConfig struct {
	Host string `mapstructure:"host"`
	Port int    `mapstructure:"port"`
}

// NoConfigKafkaPort is the Kafka port of a node started without a config
// file (Kafka's usual port, so kcat and clients find it by default).
const NoConfigKafkaPort = 9092

// TopicsConfig holds topic policies.
type TopicsConfig struct {
	// AutoCreate makes PUT on an unknown topic create it first (the
	// original's behaviour); false makes it "ERR unknown topic <t>".
	AutoCreate bool `mapstructure:"auto_create"`
}

// Backend names accepted in storage.backend.
const (
	BackendMmap   = "mmap"
	BackendBadger = "badger"
	BackendPlugin = "plugin"
)

// StorageConfig picks the SegmentStore and its options.
type StorageConfig struct {
	// Backend is mmap, badger or plugin.
	Backend string `mapstructure:"backend"`
	// Durability is none, interval or always (engine.Durability).
	Durability string `mapstructure:"durability"`
	// SyncIntervalMS is the fsync period for durability interval.
	SyncIntervalMS int64 `mapstructure:"sync_interval_ms"`
	// MinFreeBytes and MinFreePercent: below either, free on the data
	// directory's file system, the node refuses appends ("ERR disk full")
	// until space is freed; 0 turns a threshold off.
	MinFreeBytes   uint64       `mapstructure:"min_free_bytes"`
	MinFreePercent float64      `mapstructure:"min_free_percent"`
	Mmap           MmapConfig   `mapstructure:"mmap"`
	Plugin         PluginConfig `mapstructure:"plugin"`
}

// MmapConfig tunes the mmap backend; 0 means the backend's default.
type MmapConfig struct {
	// SegmentFileBytes is the preallocated size of one segment file.
	SegmentFileBytes int64 `mapstructure:"segment_file_bytes"`
	// MaxMappedSegments bounds how many sealed segment files are mapped at once.
	MaxMappedSegments int `mapstructure:"max_mapped_segments"`
	// MaxOpenSegments bounds how many open segment files hold a mapping and
	// a file descriptor at once; idle ones beyond it are parked.
	MaxOpenSegments int `mapstructure:"max_open_segments"`
}

// PluginConfig launches a third-party SegmentStore plugin.
type PluginConfig struct {
	// Path is the plugin executable.
	Path string `mapstructure:"path"`
	// Args and Env (KEY=VALUE) are passed to the plugin process.
	Args []string `mapstructure:"args"`
	Env  []string `mapstructure:"env"`
	// SHA256 (hex), when set, must match the executable's checksum.
	SHA256 string `mapstructure:"sha256"`
	// StartTimeoutMS bounds the plugin handshake.
	StartTimeoutMS int64 `mapstructure:"start_timeout_ms"`
}

// LogConfig is the daemon's slog output.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `mapstructure:"level"`
	// File, when set, receives the log instead of stderr (appended).
	File string `mapstructure:"file"`
	// Format is text or json.
	Format string `mapstructure:"format"`
}

// Default returns a fresh Config with every default: a single node that
// bootstraps its own cluster, client 127.0.0.1:8080, Raft 127.0.0.1:6000,
// data in ./data, the mmap backend.
func Default() Config {
	return Config{
		NodeID:            1,
		DataDir:           "./data",
		Join:              []string{},
		MaxSegmentEntries: 1_000_000,
		MonitorCheckMS:    10_000,
		LeaseSyncMS:       100,
		CursorCommitMS:    100,
		FailureTimeoutMS:  5_000,
		ReplicationFactor: 3,
		AckQuorum:         2,
		Raft:              RaftConfig{Host: "127.0.0.1", Port: 6000},
		Client:            ClientConfig{Host: "127.0.0.1", Port: 8080, MaxFrameBytes: protocol.DefaultMaxFrameBytes},
		HTTP:              HTTPConfig{Host: "127.0.0.1", Port: 0},
		Kafka:             KafkaConfig{Host: "127.0.0.1", Port: 0},
		Topics:            TopicsConfig{AutoCreate: true},

		ReplicaRepairTimeoutMS: 60_000,
		Retention:              RetentionConfig{CheckMS: 5_000},

		Storage: StorageConfig{
			Backend:        BackendMmap,
			Durability:     "none",
			SyncIntervalMS: 100,
			MinFreeBytes:   256 << 20,
			MinFreePercent: 5,
			Plugin:         PluginConfig{Args: []string{}, Env: []string{}, StartTimeoutMS: 30_000},
		},
		Log: LogConfig{Level: "info", Format: "text"},
	}
}

// MonitorInterval is MonitorCheckMS as a duration.
func (c Config) MonitorInterval() time.Duration { return ms(c.MonitorCheckMS) }

// LeaseSyncInterval is LeaseSyncMS as a duration.
func (c Config) LeaseSyncInterval() time.Duration { return ms(c.LeaseSyncMS) }

// CursorCommitInterval is CursorCommitMS as a duration.
func (c Config) CursorCommitInterval() time.Duration { return ms(c.CursorCommitMS) }

// FailureTimeout is FailureTimeoutMS as a duration.
func (c Config) FailureTimeout() time.Duration { return ms(c.FailureTimeoutMS) }

// ReplicaRepairTimeout is ReplicaRepairTimeoutMS as a duration.
func (c Config) ReplicaRepairTimeout() time.Duration { return ms(c.ReplicaRepairTimeoutMS) }

// SyncInterval is Storage.SyncIntervalMS as a duration.
func (s StorageConfig) SyncInterval() time.Duration { return ms(s.SyncIntervalMS) }

// StartTimeout is StartTimeoutMS as a duration.
func (p PluginConfig) StartTimeout() time.Duration { return ms(p.StartTimeoutMS) }

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
