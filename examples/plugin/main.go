// Command plugin is a complete third-party storage backend for Walrus: it
// serves boltstore (one bbolt database file, CRC per entry) over the
// plugin protocol. Build it, then point a node at it:
//
//	go build -o walrus-bolt-plugin ./examples/plugin
//
//	storage:
//	  backend: plugin
//	  plugin:
//	    path: ./walrus-bolt-plugin
//	    args: ["-dir", "/var/lib/walrus/bolt"]
//
// Flags (each falls back to an environment variable):
//
//	-dir DIR            WALRUS_BOLT_DIR          database directory (required)
//	-durability MODE    WALRUS_BOLT_DURABILITY   none | interval | always (default always)
//	-sync-interval D    WALRUS_BOLT_SYNC_INTERVAL fsync period for interval (default 100ms)
//
// It imports only the SDK, engine and its own store: see README.md.
package main

import (
	"flag"
	"os"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/examples/plugin/boltstore"
	"github.com/walrus-go/walrus/plugins/pluginsdk"
)

func main() {
	logger := pluginsdk.Logger("walrus-bolt")
	opts := boltstore.DefaultOptions()
	fs := flag.NewFlagSet("walrus-bolt", flag.ContinueOnError)
	dir := fs.String("dir", os.Getenv("WALRUS_BOLT_DIR"), "database directory (required)")
	durability := fs.String("durability", envOr("WALRUS_BOLT_DURABILITY", string(engine.DurabilityAlways)), "none, interval or always")
	interval := fs.Duration("sync-interval", envDuration("WALRUS_BOLT_SYNC_INTERVAL", opts.Store.SyncInterval), "fsync period with -durability interval")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *dir == "" {
		logger.Error("walrus-bolt: -dir (or WALRUS_BOLT_DIR) is required")
		os.Exit(2)
	}
	d, err := engine.ParseDurability(*durability)
	if err != nil {
		logger.Error("walrus-bolt: -durability", "err", err)
		os.Exit(2)
	}
	opts.Store.Durability, opts.Store.SyncInterval, opts.Logger = d, *interval, logger
	store, err := boltstore.Open(*dir, opts)
	if err != nil {
		logger.Error("walrus-bolt: open store", "dir", *dir, "err", err)
		os.Exit(1)
	}
	logger.Info("walrus-bolt serving", "dir", *dir, "durability", string(d))
	pluginsdk.Serve(store, pluginsdk.WithLimits(opts.Store.Limits))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envDuration(key string, def time.Duration) time.Duration {
	if v := os.Getenv(key); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}
