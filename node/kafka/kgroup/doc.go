// Package kgroup owns the Kafka classic consumer-group coordinator's
// membership state: members, generations, the join/sync rebalance protocol
// and the session and rebalance timers. It speaks kmsg request and response
// values; the Kafka listener decodes and routes. Committed offsets are not
// kept here: they go through the Offsets interface to the node's Raft-backed
// groups, so Kafka groups are the same groups as COMMIT/GROUPS.
package kgroup
