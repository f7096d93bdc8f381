// Package wire owns the node-to-node RPC contract: the method ids, one
// typed request and reply struct per message with its binary codec, the
// table that carries typed errors across the wire, the server-side
// dispatcher and the client stubs. The byte layout is frozen by golden
// vectors (testdata/golden.json, recorded from the encoders before the
// node was split), so nodes of different versions keep talking.
//
// Integers are little-endian; a string or byte slice is a u32 length and
// its bytes; a list is a u32 count and that many byte slices.
package wire
