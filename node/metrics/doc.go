// Package metrics owns the Prometheus instrumentation of a Walrus node: one
// private prometheus.Registry per node (no package-level state, so several
// in-process nodes never collide), the collectors the node increments, the
// scrape-time collectors that read Raft, cluster metadata and the data
// directory, a slog.Handler wrapper that counts WARN/ERROR log records, and
// the HTTP listener serving /metrics, /healthz and /readyz.
//
// It imports only engine (for the instrumented SegmentStore wrapper),
// client_golang and the standard library; the node imports it, never the
// other way round.
//
// # Names and labels
//
// Every metric of ours is named walrus_*; the Go runtime (go_*) and process
// (process_*) collectors are standard. Every series carries a constant
// node_id label. Labels are kept small: command (a fixed set, others folded to
// "OTHER"), result, op, level, state, follower_id (one per cluster member),
// topic and group. Topic labels are bounded by MaxTopicLabels per Metrics:
// topics past the limit are counted under topic="_other" so a client
// creating topics in a loop cannot blow up the series count. Consumer group
// labels are bounded the same way by MaxGroupLabels (group, topic) pairs,
// past which pairs are reported as group="_other"; a pair's slot is freed
// by DeleteGroup. README.md lists every metric with its type and labels.
//
// # Concurrency
//
// All methods and exported collectors are safe for concurrent use. The
// sources set with SetRaftSource and SetClusterSource are called from the
// scrape goroutine and must be safe to call concurrently with the node.
package metrics
