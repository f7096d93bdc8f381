package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/walrus-go/walrus/backends/badgerstore"
	"github.com/walrus-go/walrus/backends/mmapstore"
	"github.com/walrus-go/walrus/configs"
	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/plugins/pluginhost"
)

// NodeDir is <data_dir>/node_<id>, the root of one node's files.
func NodeDir(c configs.Config) string {
	return filepath.Join(c.DataDir, "node_"+strconv.FormatUint(c.NodeID, 10))
}

// StoreDir is where the configured backend keeps segment data:
// <data_dir>/node_<id>/user_data/data_plane for mmap (the original's
// layout), .../user_data/badger for badger, "" for a plugin (it owns its
// storage).
func StoreDir(c configs.Config) string {
	switch c.Storage.Backend {
	case configs.BackendMmap:
		return filepath.Join(NodeDir(c), "user_data", "data_plane")
	case configs.BackendBadger:
		return filepath.Join(NodeDir(c), "user_data", "badger")
	}
	return ""
}

// OpenStore opens the SegmentStore named by storage.backend. onPluginRestart
// (may be nil) is called each time a crashed plugin backend is restarted, so
// the restart shows in the node's metrics.
func OpenStore(ctx context.Context, c configs.Config, logger *slog.Logger, onPluginRestart func()) (engine.SegmentStore, error) {
	common := engine.DefaultOptions()
	d, err := engine.ParseDurability(c.Storage.Durability)
	if err != nil {
		return nil, fmt.Errorf("%w: storage.durability: %w", configs.ErrInvalid, err)
	}
	common.Durability = d
	common.SyncInterval = c.Storage.SyncInterval()
	dir := StoreDir(c)
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	// Each backend tags its own lines with component=<backend>.
	switch c.Storage.Backend {
	case configs.BackendMmap:
		o := mmapstore.DefaultOptions()
		o.Store = common
		if c.Storage.Mmap.SegmentFileBytes != 0 {
			o.SegmentFileBytes = c.Storage.Mmap.SegmentFileBytes
		}
		if c.Storage.Mmap.MaxMappedSegments != 0 {
			o.MaxMappedSegments = c.Storage.Mmap.MaxMappedSegments
		}
		if c.Storage.Mmap.MaxOpenSegments != 0 {
			o.MaxOpenSegments = c.Storage.Mmap.MaxOpenSegments
		}
		o.Logger = logger
		s, err := mmapstore.Open(dir, o)
		if err != nil {
			return nil, fmt.Errorf("storage: mmap at %s: %w", dir, err)
		}
		return s, nil
	case configs.BackendBadger:
		o := badgerstore.DefaultOptions()
		o.Store = common
		o.Logger = logger
		s, err := badgerstore.Open(dir, o)
		if err != nil {
			return nil, fmt.Errorf("storage: badger at %s: %w", dir, err)
		}
		return s, nil
	case configs.BackendPlugin:
		p := c.Storage.Plugin
		s, err := pluginhost.Open(ctx, pluginhost.Config{
			Path:         p.Path,
			Args:         append([]string(nil), p.Args...),
			Env:          append([]string(nil), p.Env...),
			SHA256:       p.SHA256,
			StartTimeout: p.StartTimeout(),
			Logger:       logger,
			OnRestart:    onPluginRestart,
		})
		if err != nil {
			return nil, fmt.Errorf("storage: plugin %s: %w", p.Path, err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("%w: storage.backend = %q: must be one of mmap, badger, plugin", configs.ErrInvalid, c.Storage.Backend)
}
