// Package protocol is the Walrus client wire protocol: framing, request
// parsing and reply encoding. It is pure — it touches no network and keeps no
// state — so the node's listener (node/server), the Go client (node/client),
// the CLI and the fuzz tests all share exactly one codec.
//
// A frame is a 4-byte little-endian unsigned length followed by that many
// bytes of UTF-8 text. Requests and replies use the same framing. README.md in
// this directory documents the protocol byte for byte.
//
// Imports: the standard library and engine (for topic validation) only.
// Concurrency: every function is safe for concurrent use; values are plain
// data and are not shared by the package.
package protocol
