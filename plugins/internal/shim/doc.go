// Package shim carries engine.SegmentStore across a process boundary over
// gRPC (the protocol in plugins/proto/segmentstore/v1). It owns both halves
// and the one table that maps engine sentinel errors to gRPC statuses and
// back:
//
//   - Server wraps a SegmentStore and serves it (the plugin side);
//   - Client implements SegmentStore by calling a Server (the host side);
//   - Plugin glues both into hashicorp/go-plugin (GRPCPlugin).
//
// Small appends (one chunk or less) skip HTTP/2 where they can: the
// plugin's Server offers a data channel (datachan_*.go), a plain Unix
// socket in a private directory with a token handshake and a minimal
// binary framing, pipelined by request id. A plugin without it is used
// through AppendPipe (pipe.go: long-lived gRPC streams, concurrent appends
// coalesced into one request), and batches over a chunk always take the
// client-streaming Append RPC.
//
// On Linux the data channel carries appends through shared memory instead
// of socket frames when both sides agree (shm_*.go): the host passes a
// memfd ring with its token (SCM_RIGHTS), requests and answers sit in
// fixed slots, and the socket only carries wake-up bytes to a side that
// announced it sleeps. Negotiated by gRPC metadata on OpenDataChannel, so
// an older plugin keeps the socket framing; a batch larger than a slot
// takes AppendPipe or the Append RPC.
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
