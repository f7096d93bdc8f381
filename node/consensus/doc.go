// Package consensus wires hashicorp/raft for a Walrus node: the on-disk log
// and stable store (raft-boltdb/v2) and FileSnapshotStore under
// <data_dir>/node_<id>/raft_meta/, the NetworkTransport over a caller-given
// stream layer (the node shares its Raft port with the internal RPC through
// node/mux), Raft's logging into the node's slog (through internal/hclogslog,
// name under "component"), bootstrap of a new cluster, membership changes
// (non-voter, promotion, removal) and proposals of metadata commands.
//
// # Timing (tuned for loopback; see Timing)
//
// hashicorp/raft's defaults (1 s heartbeat/election, 500 ms lease) are built
// for WANs. On loopback we use a 500 ms heartbeat and election timeout, a
// 250 ms leader lease and a 2 ms commit timeout: a failed leader is replaced
// in about 0.5-1.5 s, and followers apply a committed entry (e.g. a rollover
// that hands them a segment lease) within 2-4 ms. The price of the short
// commit timeout is an empty AppendEntries per follower every 2-4 ms while
// idle (a few hundred tiny RPCs a second on loopback). Shorter timeouts caused
// spurious elections on a loaded 2-core machine under -race.
//
// Consensus owns the *raft.Raft; Close shuts it down and closes the stores.
package consensus
