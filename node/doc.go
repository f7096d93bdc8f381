// Package node is the composition root of a Walrus node: it binds the
// listeners, opens Raft, builds the parts — node/cluster (membership,
// liveness, calls to the Raft leader), node/segment (leases, writers,
// replication), node/router (the client data path), node/cursor (shared
// cursors) and node/rollover (the Raft leader's control loops) — connects
// each to the small interfaces it uses, dispatches client commands and
// internal RPCs to them, and starts and stops them in order. It receives
// an engine.SegmentStore and never names a backend. docs/architecture.md
// describes the packages, the import rule and the lock order.
//
// # Data path
//
// PUT: any node accepts it. The topic's open segment and its leader come
// from the committed metadata; a non-leader forwards the batch over the
// internal RPC. The leader appends only while its lease (the committed
// metadata, refreshed by the lease sync loop every LeaseSyncInterval and at
// every metadata change) says it leads that open segment. Concurrent PUTs to
// one topic (from many connections, and pipelined runs within one) are
// appended by one writer goroutine per topic as one store Append (group
// commit). A node that is not (or no longer) the leader answers
// NotLeaderError; the node that took the client request waits for the next
// metadata change and retries against the new leader (bounded), so the
// client sees OK or a clear ERR.
//
// GET: one cluster-wide shared cursor per topic lives on the Raft leader
// (the cursor owner); other nodes forward GETs there. The owner walks
// sealed segments (reading them from the node that holds them) and then
// the open one, hands out each entry once, and commits cursor positions
// through Raft every CursorCommitInterval (default 100 ms). Redelivery
// window: when the Raft leader crashes or loses leadership, entries it
// handed out after its last committed cursor commit (at most one commit
// interval plus one Raft round trip of GETs) are delivered again by the
// next leader. A clean shutdown commits the cursors first.
//
// # Rollover
//
// The monitor (on the Raft leader, every MonitorInterval) asks each open
// segment's leader to fence the segment if it holds >= MaxSegmentEntries:
// the fence is an op in the topic writer's queue, so every append queued
// before it lands and every one after it is refused; the count taken then
// is exact. The monitor proposes the rollover (seal with that count, next
// leader = next voter in id order). If Apply rejects it, the segment is
// unfenced. If the outcome is unknown (timeout, Raft leadership lost) the
// entry may still commit, so the segment stays fenced and the next tick, on
// whichever node then leads, re-fences (getting the same count back) and
// re-proposes the same idempotent rollover. Refused writers wait for the
// metadata change and go to the new leader.
//
// # Segment leader failure
//
// Every node heartbeats every other member every 250 ms with its Raft
// progress and the entry counts of the open segments it leads. When the
// leader of an open segment has been silent for FailureTimeout, the Raft
// leader seals that segment at the count the node last reported and opens
// the next segment on the next live voter, so writes resume within about
// FailureTimeout (+ one heartbeat). A node out of contact with the Raft
// leader for FailureTimeout/2 stops acknowledging appends first, so a cut-off
// leader does not keep acknowledging writes that the move hides. For a
// topic with replication factor 1 the dead node's data is unreadable until
// it returns, and entries it acknowledged after its last report (< 250 ms)
// stay invisible even then; such a node never heard from since this Raft
// leader took over (a whole-cluster restart) is waited for, never failed
// over. Replicated topics recover as below.
//
// # Segment replication
//
// Each segment has a replica set in the metadata (leader first). The
// leader streams its entries to the other members (node/segment/replicate) and a PUT
// is acknowledged once the ack quorum, the leader included, stores it. Each
// member keeps a durable per-segment fence epoch (node/segment) and refuses
// appends from a lower epoch. When the leader dies, the Raft leader fences
// the survivors, seals the segment at the highest count among at least
// set-ack+1 answers (which covers every acknowledged entry), copies the
// missing entries to lagging survivors and opens the next segment
// (node/rollover). Sealed segments are read from any member holding
// them, open ones from the leader up to the count its quorum holds; members
// catch up sealed segments they miss, and segments with a member gone for
// ReplicaRepairTimeout are re-replicated.
//
// # Cluster membership
//
// A node with no Raft state and no Join addresses bootstraps a one-node
// cluster. A joining node asks any member (the join is forwarded to the
// Raft leader) to add it as a non-voter; every node sends a heartbeat with
// its last log and applied index to the Raft leader every 250 ms, and the
// leader promotes a non-voter to voter once its applied index is within
// 64 entries of the leader's commit index. hashicorp/raft does not expose
// follower match indexes, so METRICS replication.<id>.match_index is the
// follower's own reported last log index (next_index = match_index+1).
// A node restarting with Raft state simply starts; its address is
// (re-)registered through an upsert-node command ("Registered node
// address").
package node
