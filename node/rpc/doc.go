// Package rpc is the internal node-to-node RPC of Walrus: a small binary,
// framed, pipelined request/response protocol over TCP (carried on the Raft
// port through node/mux). It moves opaque payloads; the node package defines
// the methods and their encodings.
//
// Frame (both directions): u32 little-endian length of what follows, u64
// request id, u8 method (requests) or status (responses), payload. Many
// requests are in flight on one connection and responses come back in any
// order, matched by id; writes from concurrent callers are coalesced into one
// syscall by a writer goroutine (group flush), which is what makes forwarded
// appends cheap.
//
// Ownership: a Pool owns one connection per peer address, each with a reader
// and a writer goroutine; Close closes them and waits. A Server owns its
// connections and the per-request handler goroutines; Serve returns after
// they all finished.
package rpc
