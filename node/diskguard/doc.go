// Package diskguard keeps a node from filling its data directory's file
// system: Guard.Check answers, from a cached statfs refreshed at most every
// Config.Refresh (250 ms by default), whether the free space is below
// Config.MinFreeBytes or Config.MinFreePercent of the file system, and
// then returns a *wire.DiskFullError. The segment writer refuses client
// appends with it and the replica side refuses streamed appends, while
// reads, deletions, Raft and metrics go on; appends resume by themselves
// once space is freed (retention, DELETE, an operator).
//
// It is a leaf: it imports wire (for the error type) and takes its gauge
// and counter as Prometheus interfaces. A Guard is safe for concurrent use; Check
// costs an atomic load and a clock read except when the cache expires,
// when one caller refreshes it and the others keep the previous verdict.
package diskguard
