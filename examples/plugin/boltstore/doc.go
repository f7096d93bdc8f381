// Package boltstore is the storage of the example third-party plugin: an
// engine.SegmentStore kept in one bbolt database file (go.etcd.io/bbolt).
//
// Layout (README.md in the parent folder has the details): a bucket
// "meta" maps each segment key (topic, NUL, 8-byte big-endian segment) to
// its entry count, payload bytes and sealed flag; a bucket "segments"
// holds one sub-bucket per segment key whose keys are 8-byte big-endian
// offsets and whose values are a 4-byte CRC-32C of the payload followed by
// the payload. An Append is one bbolt transaction, so a batch is all or
// nothing, also across a crash; a read verifies every CRC and fails with
// engine.ErrCorrupt on a mismatch.
//
// Durability: bbolt writes every committed transaction to the file before
// Commit returns, so an acknowledged append survives the process being
// killed in every mode. DurabilityAlways also fsyncs each commit (group
// commit through bbolt's Batch), DurabilityInterval fsyncs every
// SyncInterval, DurabilityNone leaves it to the OS.
//
// Concurrency: safe for concurrent use; bbolt serialises writers and gives
// readers consistent snapshots, so readers only ever see whole batches.
package boltstore
