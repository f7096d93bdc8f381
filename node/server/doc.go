// Package server is the node's TCP client listener: it accepts connections,
// reads protocol frames, hands each run of pipelined requests to a Handler
// in one call, and writes the replies back in order with one flush per run.
//
// It owns the connection goroutines (one per connection) and nothing else:
// what a command does is the Handler's business. It never crashes on client
// input: bad frames and requests are answered with "ERR ..." (the
// connection is closed only after a zero or oversized length prefix),
// and a panicking Handler is recovered into "ERR internal error".
//
// Imports: the standard library and node/protocol only.
// Concurrency: Serve may run on several listeners at once; Close may be
// called from any goroutine, any number of times. Handle is called
// concurrently for different connections, never concurrently for one.
package server
