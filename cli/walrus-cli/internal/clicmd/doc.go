// Package clicmd is the command tree of walrus-cli: the interactive shell, the
// one-shot protocol commands (register, put, get, state, metrics, do), the
// log commands (offsets, seek, fetch, commit, committed, groups, and the
// consume loop), the operator helpers (status, topics, watch) and the load
// generator front end
// (bench produce / bench consume, whose engine is internal/bench).
//
// Every command is built by its own constructor from an *app that carries the
// global flags and the process's standard streams, so nothing is package
// level and tests can build as many trees as they like. Commands print
// through cmd.OutOrStdout()/ErrOrStderr() and return errors; Run maps those
// errors to the documented exit codes (see exitcode.go), so os.Exit is only
// called by main.
//
// Imports: cobra, readline, progressbar, x/term, node/client, node/protocol,
// node/auth (user hash)
// and internal/bench. Concurrency: a command runs on the goroutine that
// executes it; status and bench fan out goroutines that they wait for before
// returning.
package clicmd
