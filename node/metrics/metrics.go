package metrics

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every metric name of ours.
const Namespace = "walrus"

// MaxTopicLabels bounds the distinct topic label values per Metrics. The
// first MaxTopicLabels topics seen get their own series; later ones share
// topic=OtherTopic. Why: every topic label value is a new series in every
// per-topic collector, and topics are created by clients.
const MaxTopicLabels = 256

// OtherTopic is the topic label used once MaxTopicLabels is reached.
const OtherTopic = "_other"

// Result label values for client requests, forwarded requests and rollovers.
const (
	ResultOK        = "ok"
	ResultEmpty     = "empty"      // GET found nothing
	ResultError     = "error"      // ERR reply or failed operation
	ResultNotLeader = "not_leader" // ERR NotLeaderError
)

// Commands that get their own command label value; anything else is
// counted as "OTHER" (unknown commands are client input, so unbounded).
var knownCommands = []string{"REGISTER", "PUT", "GET", "STATE", "METRICS", "TOPICS", "OTHER"}

// Storage operations (the op label of the storage collectors).
var storageOps = []string{"append", "read", "seal", "stat", "list", "delete", "sync"}

// Buckets, in seconds. Client requests span a cached GET (~50µs) to a
// forwarded PUT waiting on fsync and Raft (~seconds).
var (
	requestBuckets  = prometheus.ExponentialBuckets(0.0001, 4, 9)   // 100µs .. 6.5s
	storageBuckets  = prometheus.ExponentialBuckets(0.00001, 4, 10) // 10µs .. 2.6s
	rolloverBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
)

// Metrics is one node's instrumentation. The exported collectors are what
// the node increments; the helper methods fold unbounded inputs (commands,
// topics) into bounded label values and should be preferred.
type Metrics struct {
	nodeID   uint64
	registry *prometheus.Registry

	// Raft, fed by WatchRaft. Elections counts this node becoming
	// Candidate; LeaderChanges counts this node learning of a new leader.
	Elections     prometheus.Counter
	LeaderChanges prometheus.Counter

	// Segments. Rollovers is counted once per rollover by the node that
	// initiates it (result ok|error); RolloverDuration is the time from
	// deciding to roll over until the new segment is committed.
	Rollovers        *prometheus.CounterVec // result
	RolloverDuration prometheus.Histogram

	// Data plane, per topic (use ObserveAppend/ObserveRead for bounded topics).
	AppendedEntries *prometheus.CounterVec // topic
	AppendedBytes   *prometheus.CounterVec // topic
	ReadEntries     *prometheus.CounterVec // topic
	ReadBytes       *prometheus.CounterVec // topic

	// Client API (use ObserveRequest).
	Requests        *prometheus.CounterVec   // command, result
	RequestDuration *prometheus.HistogramVec // command
	// Forwarded counts requests this node sent to another node: kind is
	// append|read|proposal|join, result ok|error.
	Forwarded *prometheus.CounterVec // kind, result

	// Leases: LeaseChanges counts gained|lost segment leases on this node,
	// LeasesHeld is the current number, LeaseSyncFailures counts failed
	// lease synchronisations ("Lease sync failed").
	LeaseChanges      *prometheus.CounterVec // change
	LeasesHeld        prometheus.Gauge
	LeaseSyncFailures prometheus.Counter

	// Segment replication: UnderReplicatedSegments is the number of
	// segments with a replica that is down or gone (set on the Raft
	// leader), ReplicaFailovers counts open segments recovered from their
	// replicas after their leader died.
	UnderReplicatedSegments prometheus.Gauge
	ReplicaFailovers        prometheus.Counter

	// Disk guard: DiskFull is 1 while this node refuses appends because its
	// data directory's file system is below storage.min_free_bytes or
	// min_free_percent; DiskFullRefusals counts the refused append batches
	// (client and replica).
	DiskFull         prometheus.Gauge
	DiskFullRefusals prometheus.Counter

	// Monitor loop ("monitor tick failed").
	MonitorTicks        prometheus.Counter
	MonitorTickFailures prometheus.Counter

	// Storage backend (use InstrumentStore or ObserveStorage).
	StorageDuration *prometheus.HistogramVec // op
	StorageErrors   *prometheus.CounterVec   // op

	// NetworkBytes counts bytes on the client and Raft ports (use
	// CountListener/CountConn).
	NetworkBytes *prometheus.CounterVec // port, direction

	// PluginRestarts counts restarts of a plugin backend process.
	PluginRestarts prometheus.Counter

	// TLSCertExpiry is the expiry (unix seconds) of the certificate each
	// TLS listener serves (client|http|cluster); set at every load (use
	// SetTLSCertExpiry). No series for a plaintext listener.
	TLSCertExpiry *prometheus.GaugeVec // listener

	// LogMessages counts log records at WARN and above by level (warn|error);
	// fed by CountingHandler.
	LogMessages *prometheus.CounterVec // level

	// AuthFailures counts refused authentications by listener (client,
	// kafka, http) and reason (auth.Reason*).
	AuthFailures *prometheus.CounterVec // listener, reason

	raft    *raftCollector
	cluster *clusterCollector
	disk    *diskCollector
	groups  *groups

	topicsMu sync.Mutex
	topics   map[string]struct{}

	// Storage health for readiness: when the last backend error and the
	// last answered call happened (unix nanoseconds), and the failing op.
	storageMu      sync.Mutex
	storageLastErr time.Time
	storageLastOK  time.Time
	storageErrOp   string
}

// StorageUnhealthyFor is how long after its last backend error, with no
// successful call since, the storage counts as unhealthy. Bounded so that
// a node taken out of rotation (and so getting no traffic to prove the
// backend recovered) becomes ready again and is retried.
const StorageUnhealthyFor = 30 * time.Second

// New returns the instrumentation of node nodeID with its own registry
// holding the Go runtime and process collectors plus every walrus_* metric.
func New(nodeID uint64) *Metrics {
	reg := prometheus.NewRegistry()
	// Every series carries node_id so dashboards can group by node without
	// relabelling instance addresses (the process collector's network
	// counters feed the dashboard's traffic panel, so they get it too).
	r := prometheus.WrapRegistererWith(prometheus.Labels{"node_id": strconv.FormatUint(nodeID, 10)}, reg)
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	counter := func(sub, name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: sub, Name: name, Help: help})
		r.MustRegister(c)
		return c
	}
	counterVec := func(sub, name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: sub, Name: name, Help: help}, labels)
		r.MustRegister(c)
		return c
	}
	gauge := func(sub, name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: sub, Name: name, Help: help})
		r.MustRegister(g)
		return g
	}

	m := &Metrics{
		nodeID:   nodeID,
		registry: reg,
		topics:   make(map[string]struct{}),

		Elections:     counter("raft", "elections_total", "Times this node became a Raft candidate."),
		LeaderChanges: counter("raft", "leader_changes_total", "Times this node learned of a new Raft leader (after an election or at start)."),

		Rollovers: counterVec("", "rollovers_total", "Segment rollovers initiated by this node, by result.", "result"),
		RolloverDuration: func() prometheus.Histogram {
			h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "rollover_duration_seconds",
				Help: "Time from deciding to roll a segment over until the new segment is committed.", Buckets: rolloverBuckets})
			r.MustRegister(h)
			return h
		}(),

		AppendedEntries: counterVec("", "appended_entries_total", "Entries appended on this node, by topic.", "topic"),
		AppendedBytes:   counterVec("", "appended_bytes_total", "Payload bytes appended on this node, by topic.", "topic"),
		ReadEntries:     counterVec("", "read_entries_total", "Entries read from this node's store, by topic.", "topic"),
		ReadBytes:       counterVec("", "read_bytes_total", "Payload bytes read from this node's store, by topic.", "topic"),

		Requests: counterVec("client", "requests_total", "Client requests handled, by command and result.", "command", "result"),
		RequestDuration: func() *prometheus.HistogramVec {
			h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "client", Name: "request_duration_seconds",
				Help: "Client request latency, by command.", Buckets: requestBuckets}, []string{"command"})
			r.MustRegister(h)
			return h
		}(),
		Forwarded: counterVec("", "forwarded_requests_total", "Requests forwarded to another node, by kind and result.", "kind", "result"),

		LeaseChanges:      counterVec("", "lease_changes_total", "Segment leases gained or lost by this node.", "change"),
		LeasesHeld:        gauge("", "leases_held", "Segment leases this node currently holds."),
		LeaseSyncFailures: counter("", "lease_sync_failures_total", "Failed lease synchronisations (\"Lease sync failed\")."),

		UnderReplicatedSegments: gauge("replication", "under_replicated_segments", "Segments with a replica that is down or gone (Raft leader's view)."),
		ReplicaFailovers:        counter("replication", "failovers_total", "Open segments sealed from their replicas after their leader died."),

		DiskFull:         gauge("", "disk_full", "1 while this node refuses appends because its data directory's file system is below storage.min_free_bytes or min_free_percent."),
		DiskFullRefusals: counter("", "disk_full_refusals_total", "Append batches (client and replica) refused because the disk is full."),

		MonitorTicks:        counter("monitor", "ticks_total", "Rollover monitor ticks run."),
		MonitorTickFailures: counter("monitor", "tick_failures_total", "Rollover monitor ticks that failed (\"monitor tick failed\")."),

		StorageDuration: func() *prometheus.HistogramVec {
			h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "storage", Name: "operation_duration_seconds",
				Help: "Storage backend operation latency, by op.", Buckets: storageBuckets}, []string{"op"})
			r.MustRegister(h)
			return h
		}(),
		StorageErrors: counterVec("storage", "operation_errors_total", "Storage backend operations that returned an error, by op.", "op"),

		NetworkBytes: counterVec("network", "bytes_total", "Bytes received (rx) and sent (tx) on this node's client and Raft ports.", "port", "direction"),

		PluginRestarts: counter("plugin", "restarts_total", "Restarts of the plugin backend process."),

		TLSCertExpiry: func() *prometheus.GaugeVec {
			g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "tls", Name: "cert_expiry_timestamp_seconds",
				Help: "Expiry (unix seconds) of the certificate a TLS listener serves, by listener (client, http, cluster)."}, []string{"listener"})
			r.MustRegister(g)
			return g
		}(),

		LogMessages: counterVec("log", "messages_total", "Log records at WARN or above, by level.", "level"),

		AuthFailures: counterVec("auth", "failures_total", "Failed or missing client authentications, by listener (client, http) and reason.", "listener", "reason"),
	}

	// Pre-create the bounded label combinations so every series exists from
	// the first scrape: rate()/increase() need a zero to start from, and the
	// alert rules can tell "no errors" from "not instrumented".
	for _, res := range []string{ResultOK, ResultError} {
		m.Rollovers.WithLabelValues(res)
	}
	for _, cmd := range knownCommands {
		for _, res := range []string{ResultOK, ResultEmpty, ResultError, ResultNotLeader} {
			m.Requests.WithLabelValues(cmd, res)
		}
		m.RequestDuration.WithLabelValues(cmd)
	}
	for _, kind := range []string{"append", "read", "proposal", "join"} {
		for _, res := range []string{ResultOK, ResultError} {
			m.Forwarded.WithLabelValues(kind, res)
		}
	}
	for _, ch := range []string{"gained", "lost"} {
		m.LeaseChanges.WithLabelValues(ch)
	}
	for _, op := range storageOps {
		m.StorageDuration.WithLabelValues(op)
		m.StorageErrors.WithLabelValues(op)
	}
	for _, port := range []string{PortClient, PortRaft} {
		for _, dir := range []string{"rx", "tx"} {
			m.NetworkBytes.WithLabelValues(port, dir)
		}
	}
	for _, lvl := range []string{"warn", "error"} {
		m.LogMessages.WithLabelValues(lvl)
	}

	info := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "node_info", Help: "Always 1; carries the node_id label."})
	info.Set(1)
	r.MustRegister(info)

	m.raft = &raftCollector{nodeID: nodeID}
	m.cluster = &clusterCollector{nodeID: nodeID}
	m.disk = newDiskCollector(diskCacheTTL)
	m.groups = newGroups(r)
	r.MustRegister(m.raft, m.cluster, m.disk)
	return m
}

// NodeID returns the node id given to New.
func (m *Metrics) NodeID() uint64 { return m.nodeID }

// Registry returns the node's registry (for tests and custom handlers).
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// TopicLabel returns the label value to use for topic: the topic itself for
// the first MaxTopicLabels distinct topics, OtherTopic after that.
func (m *Metrics) TopicLabel(topic string) string {
	m.topicsMu.Lock()
	defer m.topicsMu.Unlock()
	if _, ok := m.topics[topic]; ok {
		return topic
	}
	if len(m.topics) >= MaxTopicLabels {
		return OtherTopic
	}
	m.topics[topic] = struct{}{}
	return topic
}

// CommandLabel returns the command label value for a request command:
// upper-cased if it is one we know, "OTHER" otherwise.
func CommandLabel(cmd string) string {
	up := strings.ToUpper(cmd)
	for _, k := range knownCommands {
		if k == up {
			return up
		}
	}
	return "OTHER"
}

// ObserveRequest records one client request: command (any case; unknown
// ones fold to OTHER), result (ResultOK, ResultEmpty, ResultError,
// ResultNotLeader) and how long it took.
func (m *Metrics) ObserveRequest(command, result string, d time.Duration) {
	c := CommandLabel(command)
	m.Requests.WithLabelValues(c, result).Inc()
	m.RequestDuration.WithLabelValues(c).Observe(d.Seconds())
}

// ObserveAppend records entries and payload bytes appended to topic on
// this node.
func (m *Metrics) ObserveAppend(topic string, entries, bytes int) {
	t := m.TopicLabel(topic)
	m.AppendedEntries.WithLabelValues(t).Add(float64(entries))
	m.AppendedBytes.WithLabelValues(t).Add(float64(bytes))
}

// ObserveRead records entries and payload bytes read from topic on this
// node.
func (m *Metrics) ObserveRead(topic string, entries, bytes int) {
	t := m.TopicLabel(topic)
	m.ReadEntries.WithLabelValues(t).Add(float64(entries))
	m.ReadBytes.WithLabelValues(t).Add(float64(bytes))
}

// ObserveRollover records one rollover that started at start; err nil means
// it succeeded.
func (m *Metrics) ObserveRollover(start time.Time, err error) {
	if err != nil {
		m.Rollovers.WithLabelValues(ResultError).Inc()
		return
	}
	m.Rollovers.WithLabelValues(ResultOK).Inc()
	m.RolloverDuration.Observe(time.Since(start).Seconds())
}

// ObserveForward records one request forwarded to another node; kind is
// append, read, proposal or join.
func (m *Metrics) ObserveForward(kind string, err error) {
	res := ResultOK
	if err != nil {
		res = ResultError
	}
	m.Forwarded.WithLabelValues(kind, res).Inc()
}

// ObserveStorage records one storage operation (op is one of append, read,
// seal, stat, list, delete, sync) that started at start and returned err;
// only errors for which IsBackendError is true are counted as errors.
// InstrumentStore does this for every call.
func (m *Metrics) ObserveStorage(op string, start time.Time, err error) {
	now := time.Now()
	m.StorageDuration.WithLabelValues(op).Observe(now.Sub(start).Seconds())
	backendErr := IsBackendError(err)
	if backendErr {
		m.StorageErrors.WithLabelValues(op).Inc()
	}
	m.storageMu.Lock()
	if backendErr {
		m.storageLastErr, m.storageErrOp = now, op
	} else {
		m.storageLastOK = now
	}
	m.storageMu.Unlock()
}

// StorageHealthy reports whether the storage backend looks healthy from
// the calls observed by ObserveStorage (and so InstrumentStore): false,
// with a reason, when the most recent call failed with a backend error
// less than StorageUnhealthyFor ago. For the node's /readyz.
func (m *Metrics) StorageHealthy() (bool, string) {
	m.storageMu.Lock()
	defer m.storageMu.Unlock()
	if m.storageLastErr.IsZero() || !m.storageLastErr.After(m.storageLastOK) {
		return true, ""
	}
	ago := time.Since(m.storageLastErr)
	if ago >= StorageUnhealthyFor {
		return true, ""
	}
	return false, fmt.Sprintf("storage backend error: %s failed %s ago", m.storageErrOp, ago.Round(time.Millisecond))
}

// SetTLSCertExpiry records the expiry of the certificate listener serves
// (after every successful load or reload).
func (m *Metrics) SetTLSCertExpiry(listener string, notAfter time.Time) {
	m.TLSCertExpiry.WithLabelValues(listener).Set(float64(notAfter.Unix()))
}
