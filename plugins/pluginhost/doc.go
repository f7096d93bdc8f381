// Package pluginhost runs a storage backend plugin (an executable built
// with plugins/pluginsdk) and presents it to the node as an
// engine.SegmentStore.
//
// Open launches the plugin through hashicorp/go-plugin (gRPC only, never
// net/rpc), after checking its SHA-256 when Config.SHA256 is set, and
// returns a *Store that owns the process:
//
//   - Close closes the plugin's store (so it flushes) and then stops the
//     process; nothing is left running.
//   - If the process dies, calls fail fast with engine.ErrUnavailable
//     ("storage backend unavailable") while a supervisor goroutine owned by
//     the Store relaunches the plugin with capped exponential backoff; each
//     restart is logged, counted (Restarts) and reported to Config.OnRestart.
//     Service resumes with whatever the plugin recovered: the plugin owns
//     its durability (plugins/README.md states the contract). A plugin that
//     is alive but stops answering fails a periodic liveness probe and is
//     killed, then restarted the same way.
//   - Orphans: on Linux the plugin gets SIGTERM when the node dies
//     (PR_SET_PDEATHSIG); independently, pluginsdk.Serve exits when its
//     parent process changes.
//
// Logs: the plugin's stderr JSON lines are re-levelled into Config.Logger,
// and anything it prints to stdout/stderr after the handshake is logged
// line by line; every line carries plugin=<name>.
//
// Imports: engine, plugins/internal/shim, go-plugin. Concurrency: a Store
// is safe for concurrent use.
package pluginhost
