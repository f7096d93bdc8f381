// Package testcluster is the shared multi-process test harness: it builds
// the walrus binaries once per test binary (Main, from TestMain), writes a
// YAML config per node with free 127.0.0.1 ports, starts N real walrus
// processes, waits until Raft has exactly one leader and every node is a
// voter, and lets a test kill (SIGKILL), stop (SIGTERM, expecting exit 0)
// and restart nodes. Conn speaks the client protocol over raw TCP frames, so
// tests exercise the bytes on the wire, including malformed ones.
//
// Every process is stopped in t.Cleanup; on failure the tail of every node's
// log and stderr is written to the test log. Waits poll conditions with
// deadlines (Eventually), never fixed sleeps.
//
// It is test support only: nothing outside _test.go files imports it.
package testcluster
