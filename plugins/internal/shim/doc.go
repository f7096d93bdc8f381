// Package shim carries engine.SegmentStore across a process boundary over
// gRPC (the protocol in plugins/proto/segmentstore/v1). It owns both halves
// and the one table that maps engine sentinel errors to gRPC statuses and
// back:
//
//   - Server wraps a SegmentStore and serves it (the plugin side);
//   - Client implements SegmentStore by calling a Server (the host side);
//   - Plugin glues both into hashicorp/go-plugin (GRPCPlugin).
//
// Batches and read results larger than one gRPC message are split into
// chunks of at most ChunkBytes payload (chunk.go); lengths announced by the
// peer are checked against limits before anything is allocated.
//
// Imports: engine, the generated protocol, grpc, go-plugin. Not badger, raft
// or viper: pluginsdk (what third parties link) imports this package.
//
// Concurrency: Client and Server are safe for concurrent use; they add no
// locking of their own beyond the Client's closed flag — the wrapped store
// serialises what it must.
package shim
