package configs

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/walrus-go/walrus/node/placement"
)

// Bounds on the numeric keys. Upper bounds exist so a typo (an extra zero,
// seconds written as milliseconds) fails at start instead of misbehaving.
const (
	maxSegmentEntriesMax = 1 << 40
	monitorCheckMSMin    = 10
	monitorCheckMSMax    = 3_600_000
	leaseSyncMSMin       = 10
	leaseSyncMSMax       = 60_000
	cursorCommitMSMin    = 1
	cursorCommitMSMax    = 60_000
	failureTimeoutMSMin  = 100
	failureTimeoutMSMax  = 600_000
	replicationMax       = placement.MaxReplicationFactor
	maxFrameBytesMin     = 1 << 10
	maxFrameBytesMax     = 256 << 20
	syncIntervalMSMin    = 1
	syncIntervalMSMax    = 60_000
	minFreeBytesMax      = 1 << 50
	minFreePercentMax    = 50
	startTimeoutMSMin    = 100
	startTimeoutMSMax    = 600_000
	segmentFileBytesMin  = 4 << 10
	segmentFileBytesMax  = 1 << 40
	maxMappedMax         = 1 << 20
)

// KeyError is one bad configuration value.
type KeyError struct {
	Key     string // dotted key, e.g. raft.port or join[1]
	Value   string // the value as written (strings quoted)
	Problem string // what is allowed
}

func (e *KeyError) Error() string { return e.Key + " = " + e.Value + ": " + e.Problem }

// Is makes errors.Is(err, ErrInvalid) true for every KeyError.
func (e *KeyError) Is(target error) bool { return target == ErrInvalid }

// Validate checks every key. It returns nil or an error that wraps
// ErrInvalid and joins (errors.Join) one *KeyError per bad key, naming the
// key, its value and the allowed range.
func (c Config) Validate() error {
	var errs []error
	bad := func(key string, val any, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Value: show(val), Problem: fmt.Sprintf(format, args...)})
	}
	intRange := func(key string, val, lo, hi int64) {
		if val < lo || val > hi {
			bad(key, val, "must be in %d..%d", lo, hi)
		}
	}
	port := func(key string, val int, allowZero bool) {
		lo := int64(1)
		if allowZero {
			lo = 0
		}
		intRange(key, int64(val), lo, 65535)
	}
	host := func(key, val string, allowEmpty bool) {
		if val == "" {
			if !allowEmpty {
				bad(key, val, "must be a host name or IP address")
			}
			return
		}
		if strings.ContainsAny(val, " :/\t") && net.ParseIP(val) == nil {
			bad(key, val, "must be a host name or IP address without a port")
		}
	}
	oneOf := func(key, val string, allowed ...string) {
		if !slices.Contains(allowed, val) {
			bad(key, val, "must be one of %s", strings.Join(allowed, ", "))
		}
	}

	if c.NodeID < 1 {
		bad("node_id", c.NodeID, "must be >= 1")
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", c.DataDir, "must not be empty")
	}
	for i, addr := range c.Join {
		h, p, err := net.SplitHostPort(addr)
		n, perr := strconv.Atoi(p)
		if err != nil || h == "" || perr != nil || n < 1 || n > 65535 {
			bad(fmt.Sprintf("join[%d]", i), addr, "must be host:port with a port in 1..65535")
		}
	}
	if c.MaxSegmentEntries < 1 || c.MaxSegmentEntries > maxSegmentEntriesMax {
		bad("max_segment_entries", c.MaxSegmentEntries, "must be in 1..%d", uint64(maxSegmentEntriesMax))
	}
	intRange("monitor_check_ms", c.MonitorCheckMS, monitorCheckMSMin, monitorCheckMSMax)
	intRange("lease_sync_ms", c.LeaseSyncMS, leaseSyncMSMin, leaseSyncMSMax)
	intRange("cursor_commit_ms", c.CursorCommitMS, cursorCommitMSMin, cursorCommitMSMax)
	intRange("failure_timeout_ms", c.FailureTimeoutMS, failureTimeoutMSMin, failureTimeoutMSMax)
	intRange("replication_factor", int64(c.ReplicationFactor), 1, replicationMax)
	intRange("replica_repair_timeout_ms", c.ReplicaRepairTimeoutMS, 1_000, 86_400_000)
	intRange("retention.max_age_ms", c.Retention.MaxAgeMS, 0, 1<<53)
	intRange("max_segment_age_ms", c.MaxSegmentAgeMS, 0, 1<<53)
	intRange("retention.check_ms", c.Retention.CheckMS, 10, 86_400_000)
	if c.AckQuorum < 1 || c.AckQuorum > max(c.ReplicationFactor, 1) {
		bad("ack_quorum", c.AckQuorum, "must be in 1..replication_factor (%d)", c.ReplicationFactor)
	} else if placement.CheckReplication(c.ReplicationFactor, c.AckQuorum) != nil {
		bad("ack_quorum", c.AckQuorum, "must be >= 2 when replication_factor is %d: a leader that acknowledges alone could fail holding entries no other replica has (use replication_factor: 1 for a single copy)", c.ReplicationFactor)
	}

	host("raft.host", c.Raft.Host, false)
	port("raft.port", c.Raft.Port, false)
	host("raft.advertise_host", c.Raft.AdvertiseHost, true)
	if c.Raft.AdvertiseHost == "" && isWildcard(c.Raft.Host) {
		bad("raft.advertise_host", c.Raft.AdvertiseHost, "must be set when raft.host is %s (peers cannot dial a wildcard address)", c.Raft.Host)
	}
	host("client.host", c.Client.Host, false)
	port("client.port", c.Client.Port, false)
	intRange("client.max_frame_bytes", int64(c.Client.MaxFrameBytes), maxFrameBytesMin, maxFrameBytesMax)
	host("http.host", c.HTTP.Host, false)
	port("http.port", c.HTTP.Port, true)
	host("kafka.host", c.Kafka.Host, false)
	port("kafka.port", c.Kafka.Port, true)
	if c.Kafka.Port != 0 && (c.Kafka.Port == c.Raft.Port || c.Kafka.Port == c.Client.Port || c.Kafka.Port == c.HTTP.Port) {
		bad("kafka.port", c.Kafka.Port, "must differ from raft.port, client.port and http.port")
	}
	if c.Client.Port == c.Raft.Port && c.Client.Port != 0 {
		bad("client.port", c.Client.Port, "must differ from raft.port")
	}
	if c.HTTP.Port != 0 && (c.HTTP.Port == c.Raft.Port || c.HTTP.Port == c.Client.Port) {
		bad("http.port", c.HTTP.Port, "must differ from raft.port and client.port")
	}

	s := c.Storage
	oneOf("storage.backend", s.Backend, BackendMmap, BackendBadger, BackendPlugin)
	oneOf("storage.durability", s.Durability, "none", "interval", "always")
	intRange("storage.sync_interval_ms", s.SyncIntervalMS, syncIntervalMSMin, syncIntervalMSMax)
	if s.MinFreeBytes > minFreeBytesMax {
		bad("storage.min_free_bytes", s.MinFreeBytes, "must be in 0..%d (1 PiB)", uint64(minFreeBytesMax))
	}
	if !(s.MinFreePercent >= 0 && s.MinFreePercent <= minFreePercentMax) {
		bad("storage.min_free_percent", s.MinFreePercent, "must be in 0..%d", minFreePercentMax)
	}
	if s.Mmap.SegmentFileBytes != 0 {
		intRange("storage.mmap.segment_file_bytes", s.Mmap.SegmentFileBytes, segmentFileBytesMin, segmentFileBytesMax)
	}
	intRange("storage.mmap.max_mapped_segments", int64(s.Mmap.MaxMappedSegments), 0, maxMappedMax)
	intRange("storage.mmap.max_open_segments", int64(s.Mmap.MaxOpenSegments), 0, maxMappedMax)
	if s.Backend == BackendPlugin && strings.TrimSpace(s.Plugin.Path) == "" {
		bad("storage.plugin.path", s.Plugin.Path, "must name the plugin executable when storage.backend is plugin")
	}
	if s.Plugin.SHA256 != "" {
		if b, err := hex.DecodeString(s.Plugin.SHA256); err != nil || len(b) != 32 {
			bad("storage.plugin.sha256", s.Plugin.SHA256, "must be 64 hex digits (or empty)")
		}
	}
	for i, kv := range s.Plugin.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			bad(fmt.Sprintf("storage.plugin.env[%d]", i), kv, "must be KEY=VALUE")
		}
	}
	intRange("storage.plugin.start_timeout_ms", s.Plugin.StartTimeoutMS, startTimeoutMSMin, startTimeoutMSMax)

	c.validateTLS(bad)
	oneOf("log.level", strings.ToLower(c.Log.Level), "debug", "info", "warn", "error")
	oneOf("log.format", c.Log.Format, "text", "json")
	errs = append(errs, c.validateSecurity()...)
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
}

func isWildcard(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}
