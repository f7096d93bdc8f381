// Command mmapplugin serves the built-in mmap backend (backends/mmapstore)
// as a plugin. It exists to prove, in tests and benchmarks, that a real
// durable store behaves the same in process and out of process.
//
// Usage (started by a host, never by hand):
//
//	mmapplugin -dir DIR [-durability none|interval|always] [-segment-file-bytes N]
//
// Each flag falls back to an environment variable: WALRUS_MMAPPLUGIN_DIR,
// WALRUS_MMAPPLUGIN_DURABILITY, WALRUS_MMAPPLUGIN_SEGMENT_FILE_BYTES.
// WALRUS_MMAPPLUGIN_CPUPROFILE=path writes a CPU profile of the plugin
// process until it exits (for profiling the plugin boundary).
package main

import (
	"flag"
	"os"
	"runtime/pprof"
	"strconv"

	"github.com/walrus-go/walrus/backends/mmapstore"
	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/plugins/pluginsdk"
)

func main() {
	logger := pluginsdk.Logger("mmapplugin")
	opts := mmapstore.DefaultOptions()
	fs := flag.NewFlagSet("mmapplugin", flag.ContinueOnError)
	dir := fs.String("dir", os.Getenv("WALRUS_MMAPPLUGIN_DIR"), "data directory (required)")
	durability := fs.String("durability", envOr("WALRUS_MMAPPLUGIN_DURABILITY", string(opts.Store.Durability)), "none, interval or always")
	fileBytes := fs.Int64("segment-file-bytes", envInt("WALRUS_MMAPPLUGIN_SEGMENT_FILE_BYTES", opts.SegmentFileBytes), "preallocated segment file size")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *dir == "" {
		logger.Error("mmapplugin: -dir (or WALRUS_MMAPPLUGIN_DIR) is required")
		os.Exit(2)
	}
	d, err := engine.ParseDurability(*durability)
	if err != nil {
		logger.Error("mmapplugin: -durability", "err", err)
		os.Exit(2)
	}
	opts.Store.Durability = d
	opts.SegmentFileBytes = *fileBytes
	opts.Logger = logger
	store, err := mmapstore.Open(*dir, opts)
	if err != nil {
		logger.Error("mmapplugin: open store", "dir", *dir, "err", err)
		os.Exit(1)
	}
	if path := os.Getenv("WALRUS_MMAPPLUGIN_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	pluginsdk.Serve(store, pluginsdk.WithLimits(opts.Store.Limits))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envInt(key string, def int64) int64 {
	if v := os.Getenv(key); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return def
}
