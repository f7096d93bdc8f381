// Package badgerstore owns the badger/v4 implementation of
// engine.SegmentStore: one badger key per entry, a per-segment meta key
// (entry count, payload bytes, sealed flag) committed in the same badger
// transaction as the entries it counts, and the goroutines that serve the
// store (a group committer, the interval syncer, value-log GC), all started
// by Open and stopped by Close. README.md documents the key layout, the
// durability guarantees and measured numbers.
//
// It imports engine and badger only; it never imports another backend, the
// node or the plugins.
//
// # Concurrency
//
// A *Store is safe for concurrent use. Every operation holds the store's
// RWMutex shared for its whole duration and Close takes it exclusively, so
// Close waits for in-flight calls and nothing touches badger after it is
// closed. Appends, Seal and Delete of one segment are serialised by a
// per-segment mutex, which also owns the writer's cached copy of the
// segment's meta; readers never take it: Read, Stat and List run in a
// badger read transaction (a consistent snapshot) and bound themselves by
// the committed meta, so they see whole batches only.
//
// Small appends go to the group committer, which packs every request that is
// waiting into one badger transaction: in durability always (badger
// SyncWrites) that is one fsync for all of them. A batch too large for one
// badger transaction is written in chunks by its caller and made visible by
// a final meta commit; until then (or forever, after a crash) the chunk keys
// lie beyond the committed count where no reader looks, and the next append
// overwrites them.
package badgerstore
