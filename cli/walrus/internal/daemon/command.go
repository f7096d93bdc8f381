package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/walrus-go/walrus/configs"
	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/tlsconf"
)

// closeTimeout bounds how long the store may take to close at shutdown.
const closeTimeout = 30 * time.Second

// NewCommand returns the walrus root command. Running it with no config
// file, environment or flags starts a single-node cluster on the defaults.
func NewCommand() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "walrus",
		Short: "Walrus node daemon: a distributed segment log with Raft metadata",
		Long: `walrus runs one Walrus node. Settings come from, highest precedence first:
flags, WALRUS_* environment variables (WALRUS_MAX_SEGMENT_ENTRIES,
WALRUS_MONITOR_CHECK_MS, WALRUS_RAFT_PORT, ...), the YAML file given with
--config, and the defaults (a single node: client 127.0.0.1:8080,
Raft 127.0.0.1:6000, data in ./data, mmap backend).`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := configs.Load(configFile, cmd.Flags())
			if err != nil {
				return err
			}
			return Run(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "YAML config file (see configs/README.md)")
	configs.AddFlags(cmd.Flags())
	cmd.Flags().SortFlags = false
	return cmd
}

// Run runs one node with cfg until ctx is cancelled and returns nil after
// a clean shutdown. Logs go to log.file, or to stderr when it is empty.
// cfg is validated here too (configs.Load already did for the command):
// the user-facing bounds live in configs, and an error names the key.
func Run(ctx context.Context, cfg configs.Config, stderr io.Writer) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger, closeLog, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeLog(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	// One metrics registry per node, shared by the logger (counts WARN and
	// ERROR lines for the error-rate alert), the storage wrapper (latency
	// and errors by op) and the node itself.
	m := metrics.New(cfg.NodeID)
	logger = slog.New(metrics.CountingHandler(logger.Handler(), m))
	logger.Info("config loaded", "file", cfg.File, "backend", cfg.Storage.Backend,
		"durability", cfg.Storage.Durability, "data_dir", cfg.DataDir, "join", cfg.Join)

	ncfg := NodeConfig(cfg)
	if ncfg.Security, err = SecurityConfig(cfg); err != nil {
		return err
	}
	logger.Info("client security", "users", len(cfg.Users), "acls", len(cfg.ACLs), "tls", ncfg.Security.TLS, "insecure", cfg.Security.Insecure)
	if err := ncfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", configs.ErrInvalid, err)
	}
	store, err := OpenStore(ctx, cfg, logger, m.PluginRestarts.Inc)
	if err != nil {
		logger.Error("storage open failed", "backend", cfg.Storage.Backend, "err", err)
		return err
	}
	defer func() {
		if cerr := closeStore(store); cerr != nil {
			logger.Error("storage close failed", "err", cerr)
			err = errors.Join(err, cerr)
		}
	}()

	ncfg.Metrics = m
	n, err := node.New(ncfg, metrics.InstrumentStore(store, m), logger)
	if err != nil {
		return fmt.Errorf("start node %d: %w", cfg.NodeID, err)
	}
	stopHUP := reloadOnHUP(n.ReloadTLS, logger)
	err = n.Run(ctx)
	stopHUP()
	if err != nil {
		logger.Error("node stopped with an error", "err", err)
		return fmt.Errorf("node %d: %w", cfg.NodeID, err)
	}
	return nil
}

// closeStore closes the store, bounded by closeTimeout so a wedged backend
// (a hung plugin) cannot keep the process from exiting.
func closeStore(s engine.SegmentStore) error {
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(closeTimeout):
		return fmt.Errorf("storage close: still running after %v", closeTimeout)
	}
}

// NodeConfig maps the daemon configuration onto node.Config, starting from
// node.DefaultConfig so fields the file does not cover keep the node's
// defaults.
func NodeConfig(c configs.Config) node.Config {
	n := node.DefaultConfig()
	n.NodeID = c.NodeID
	n.DataDir = c.DataDir
	n.RaftHost = c.Raft.Host
	n.RaftPort = c.Raft.Port
	n.RaftAdvertiseHost = c.Raft.AdvertiseHost // "" = the node uses RaftHost
	n.ClientHost = c.Client.Host
	n.ClientPort = c.Client.Port
	n.HTTPHost = c.HTTP.Host
	n.HTTPPort = c.HTTP.Port
	n.HTTPPprof = c.HTTP.Pprof
	n.KafkaHost = c.Kafka.Host
	n.KafkaPort = c.Kafka.Port
	n.Join = append([]string(nil), c.Join...)
	n.MaxSegmentEntries = c.MaxSegmentEntries
	n.MonitorInterval = c.MonitorInterval()
	n.LeaseSyncInterval = c.LeaseSyncInterval()
	n.MaxFrameBytes = c.Client.MaxFrameBytes
	n.AutoCreateTopics = c.Topics.AutoCreate
	n.ReplicationFactor = c.ReplicationFactor
	n.AckQuorum = c.AckQuorum
	n.CursorCommitInterval = c.CursorCommitInterval()
	n.Retention = metadata.Limits{MaxAgeMs: c.Retention.MaxAgeMS, MaxBytes: c.Retention.MaxBytes, MaxEntries: c.Retention.MaxEntries}
	n.RetentionInterval = time.Duration(c.Retention.CheckMS) * time.Millisecond
	n.MaxSegmentBytes = c.MaxSegmentBytes
	n.MaxSegmentAge = time.Duration(c.MaxSegmentAgeMS) * time.Millisecond
	n.FailureTimeout = c.FailureTimeout()
	n.ReplicaRepairTimeout = c.ReplicaRepairTimeout()
	n.MinFreeBytes = c.Storage.MinFreeBytes
	n.MinFreePercent = c.Storage.MinFreePercent
	n.TLS = tlsconf.Files{CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, CAFile: c.TLS.ClientCAFile}
	n.ClusterTLS = tlsconf.Files{CertFile: c.ClusterTLS.CertFile, KeyFile: c.ClusterTLS.KeyFile, CAFile: c.ClusterTLS.CAFile}
	return n
}
