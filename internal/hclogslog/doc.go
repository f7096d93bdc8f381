// Package hclogslog owns the one bridge between hclog, the logging interface
// of hashicorp/raft and hashicorp/go-plugin, and log/slog, which the rest of
// Walrus logs through. Raft (node/consensus) and the plugin host
// (plugins/pluginhost) hand a Logger to their library; a plugin process
// (plugins/pluginsdk) writes hclog's JSON line shape with NewJSON so the
// host's go-plugin can re-level its lines. Keeping both directions here keeps
// the level mapping and the rendering of hclog.Fmt values in one place.
//
// It imports only go-hclog and the standard library, so pluginsdk may use it
// without pulling in the node's dependencies.
//
// Concurrency: a Logger, a LineWriter and the logger NewJSON returns are safe
// for concurrent use.
package hclogslog
