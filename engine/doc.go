// Package engine owns the storage contract of Walrus: the SegmentStore
// interface every backend implements, the types it speaks (SegmentID,
// SegmentInfo, Durability, Limits) and the sentinel errors callers match with
// errors.Is. It imports nothing else from this module; backends, the plugin
// shim and the node import it.
//
// # Segments
//
// A segment is identified by a SegmentID: a topic name plus a segment number.
// Entries in a segment have dense offsets 0, 1, 2, ... in append order. A
// segment is created by its first Append and is open until Seal; after Seal
// it is immutable forever (its entry count and bytes never change again).
//
// # The contract
//
//   - Append(ctx, id, entries) appends a non-empty batch atomically: after a
//     successful return all entries are readable, in order, at offsets
//     first..first+len-1; after an error none of them is (a reader never sees
//     part of a batch, and a crash never leaves part of a batch behind after
//     reopen). Appending to a sealed segment fails with ErrSealed. An entry may
//     be empty (zero bytes). An entry larger than Limits.MaxEntryBytes or a
//     batch larger than Limits.MaxBatchBytes fails with ErrInvalidArgument.
//   - Read(ctx, id, offset, maxEntries, maxBytes) returns entries starting at
//     offset, in order, byte-identical to what was appended. It stops at
//     maxEntries entries or before the running payload total would exceed
//     maxBytes, but always returns at least one entry when offset < count so a
//     single large entry can always be read. offset == count returns an empty
//     slice and no error (the consumer is caught up); offset > count fails
//     with ErrOutOfRange. The returned slices are owned by the caller.
//   - Seal(ctx, id) makes the segment immutable and returns its final info.
//     Sealing an already sealed segment is a no-op that returns the same info.
//   - Stat, List and Delete report and remove segments; Delete of a segment
//     that does not exist fails with ErrNotFound.
//   - Sync(ctx) makes every acknowledged append durable regardless of the
//     configured Durability.
//   - Close releases everything; it is idempotent. Every other method called
//     after Close fails with ErrClosed.
//
// Operations on a segment that does not exist (other than Append) fail with
// ErrNotFound. Topic names are checked with ValidateTopic; a bad name fails
// with ErrInvalidName before anything touches disk.
//
// # Concurrency
//
// A SegmentStore is safe for concurrent use. Different segments may be
// appended to in parallel. For one segment, concurrent Append calls are
// serialised by the store (each batch stays contiguous); readers run
// concurrently with the writer and only ever observe whole, acknowledged
// batches.
//
// # Durability and reopen
//
// Opening a store on a directory that holds data recovers it: after a clean
// Close every segment is back with its entries and seal state. After a crash
// (the process killed at any instant) every append acknowledged under the
// guarantees of the configured Durability is present and intact, no torn or
// corrupt entry is ever returned, and an open segment continues at the
// offset after its last whole entry. See Durability for what survives power
// loss versus a process crash.
package engine
