// Package bench is walrus-cli's load generator: it produces verifiable
// messages to a set of topics over pipelined connections, consumes them back
// and checks that every message arrived once and intact, and reports
// throughput and latency percentiles.
//
// Payloads carry a run id, the run's message total, a sequence number and a
// CRC (payload.go), so a consumer needs no side channel to verify a run.
// Latencies go into a log-linear histogram (histogram.go) per worker, merged
// at the end, so recording costs no allocation and no lock.
//
// Imports: node/protocol and the standard library (the connection is the
// Pipe interface; walrus-cli adapts node/client to it). Concurrency:
// Produce and Consume start one goroutine per client connection and return
// only after all of them have stopped.
package bench
