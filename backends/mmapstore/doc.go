// Package mmapstore is the default engine.SegmentStore of Walrus: one
// preallocated file per segment, memory-mapped with
// github.com/edsrzf/mmap-go, every entry framed with its length and a
// CRC32C, batches verified whole on recovery.
//
// It owns the files under the directory given to Open (normally
// <data_dir>/node_<id>/user_data/data_plane/) and the goroutine that
// fsyncs them; it imports only engine, mmap-go and x/sys. The files are
// described in frame.go (format), fs.go (names), recovery.go (what Open
// does with them) and README.md (guarantees, limitations, numbers).
//
// One concept per file: frame.go is the pure codec; filewrite.go the
// pwrite path for large batches; index.go the in-memory offset index of
// open segments; segment.go one segment file (create, append, grow, seal,
// sync, close) and segread.go its read path (copying entries out,
// mapping and evicting sealed files); mapped.go the LRU bound on mapped sealed segments;
// syncer.go the group-commit goroutine; recovery.go open-time verification
// and torn-tail repair; store.go the SegmentStore methods.
//
// Concurrency: a Store is safe for concurrent use. Appends to one segment
// are serialised; appends to different segments run in parallel; readers
// run concurrently with the writer and copy their entries out of the
// mapping under the segment's read lock, so growing or unmapping a file
// never races a reader. Close waits for in-flight operations on each
// segment and stops the syncer goroutine.
package mmapstore
