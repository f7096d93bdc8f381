// Package client is the Go client of the Walrus client protocol (see
// node/protocol). The CLI, the multi-process tests and the load generator all
// use it.
//
// One Client owns one TCP connection. Its synchronous methods (Do, DoLine,
// Register, Put, Get, State, Metrics, TopicsJSON, the *Doc methods, the
// log methods Offsets, Seek, Fetch, Commit, Committed, Read, Ack and
// Groups, Pipeline) are safe for concurrent use: each holds the connection for its
// whole exchange, so concurrent callers are serialised, not interleaved. For parallel load, use one Client per
// goroutine.
//
// The streaming methods Send, Flush and Recv keep many requests in flight
// on the connection (pipelining) with no goroutine or allocation per
// request. They must not be mixed with the synchronous methods while replies
// are outstanding; Send/Flush may run on one goroutine and Recv on another.
//
// A reply "ERR <message>" becomes a *ServerError. Connection failures are
// *ConnError values naming the address. If a request is interrupted half
// way (timeout, cancelled ctx, I/O error) the reply stream can no longer be
// matched to requests, so the Client becomes broken: every later call
// returns the same error and the caller must Dial again. One case is
// repaired silently: when the server has closed an idle connection (its
// idle timeout, a restart), the next synchronous call notices before
// sending and redials the same address.
//
// State, Metrics and TopicsJSON return the node's JSON as sent (walrus-cli
// prints it byte for byte); StateDoc, MetricsDoc and TopicsDoc decode it
// into the node/status types, the one declaration of those documents. The
// log methods always decode (node/status/log.go); FETCH and READ pages go
// through a hand-written decoder (logdecode.go) that falls back to
// encoding/json for anything unusual.
//
// Imports: the standard library, node/protocol (which uses engine for
// topic validation) and node/status.
package client
