// Package memstore owns the in-memory reference implementation of
// engine.SegmentStore. It keeps every segment as a slice of entries in the
// heap, so it is fast, exact and forgets everything on Close: use it in node
// tests, the test plugin and anywhere a real disk is not the point.
//
// It imports only engine. A *Store is safe for concurrent use: a store-wide
// RWMutex guards the segment map, and each segment has its own RWMutex so
// appends to different segments run in parallel and readers of one segment
// never block each other. Because a batch is installed under the segment's
// write lock in one step, a reader sees either none or all of it.
//
// Durability does not apply: Sync is a no-op (there is nowhere to sync to),
// and nothing survives Close. The conformance suite runs it with
// enginetest.Harness.NoReopen.
package memstore
