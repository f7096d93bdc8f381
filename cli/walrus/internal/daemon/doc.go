// Package daemon is the walrus command: it loads the configuration
// (configs.Load: defaults < YAML < WALRUS_* environment < flags), builds the
// logger, opens the SegmentStore named by storage.backend — this is the only
// place in the project that names a backend — and runs node.Node until the
// command's context is cancelled (SIGINT/SIGTERM in main), then closes the
// store. main stays a one-screen wrapper so the command can be run and
// tested in-process.
package daemon
