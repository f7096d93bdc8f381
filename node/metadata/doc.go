// Package metadata owns the replicated cluster metadata of a Walrus node: the
// ClusterState (topics, their segments, segment leaders, sealed counts, shared
// read cursors, node addresses), the commands that change it, their compact
// codec, and the raft.FSM that applies them.
//
// It imports engine (for topic validation) and hashicorp/raft (for the FSM
// interface) only; it does no I/O besides snapshot streams.
//
// # Commands
//
// Every command is validated and idempotent in Apply: a repeated or stale
// command (a rollover of a segment that is no longer open, a cursor commit
// behind the committed position, an upsert of an identical node) is a no-op
// that returns a Result with Status NoOp, never an error, so a retried
// proposal is harmless. Invalid commands return a Result with Err set and
// leave the state untouched.
//
// # Concurrency
//
// raft calls Apply, Snapshot and Restore from its FSM goroutine; every read
// accessor may be called concurrently from any goroutine and returns copies
// (or plain values), never references into the live state. Changed returns a
// channel that is closed at the next state change, so waiters (lease sync,
// writers waiting for a new segment leader) wake up immediately instead of
// polling.
package metadata
