package pluginsdk

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/plugins/internal/shim"
)

// Handshake values a host and a plugin must share. A host refuses a plugin
// whose ProtocolVersion differs, naming both versions.
const (
	ProtocolVersion  = shim.ProtocolVersion
	MagicCookieKey   = shim.MagicCookieKey
	MagicCookieValue = shim.MagicCookieValue
)

// parentPollInterval is how often Serve checks that the process that started
// it is still alive.
const parentPollInterval = 500 * time.Millisecond

// pluginGCPercent is the GOGC a plugin runs with unless the environment
// sets one. A plugin's live heap is small and every call allocates its
// request buffers, so at the default 100 the collector runs every few
// hundred calls; measured on the append benchmark, 400 cut the cost of a
// batched append through the plugin by about a third. The heap may grow to
// 5x the live data, which for a plugin is a few MiB.
const pluginGCPercent = 400

// termGrace is how long a plugin that got SIGTERM while its node is still
// running keeps serving, waiting for the node to stop it. A service manager
// (systemd's default KillMode) signals the node and the plugin together;
// the node's own shutdown still needs its store, and stops the plugin last.
const termGrace = 10 * time.Second

// Handshake returns the go-plugin handshake of the SegmentStore protocol.
func Handshake() plugin.HandshakeConfig { return shim.Handshake() }

// Option tunes Serve.
type Option func(*serveOptions)

type serveOptions struct {
	limits engine.Limits
	logger hclog.Logger
	noShm  bool
}

// WithLimits declares the limits the store enforces, so the server refuses
// an over-limit batch before buffering it (default engine.DefaultLimits()).
func WithLimits(l engine.Limits) Option { return func(o *serveOptions) { o.limits = l } }

// WithoutSharedMemory declines the shared-memory ring the host offers for
// appends (Linux); they are then framed on the data channel socket, as with
// plugins built before the ring existed. For tests and for comparing the
// two paths; there is no reason to turn it off otherwise.
func WithoutSharedMemory() Option { return func(o *serveOptions) { o.noShm = true } }

// Serve serves store to the host that started this process and blocks until
// the host shuts the plugin down, the parent process goes away (orphan
// protection: the plugin must not outlive its node), or SIGTERM arrives and
// either the parent is gone or termGrace passes.
// It closes store before returning. Run directly (not by a host), it prints
// a notice and exits with status 1.
func Serve(store engine.SegmentStore, opts ...Option) {
	o := serveOptions{
		logger: hclog.New(&hclog.LoggerOptions{
			Name: "pluginsdk", Level: hclog.Info, Output: os.Stderr, JSONFormat: true,
		}),
	}
	for _, opt := range opts {
		opt(&o)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(pluginGCPercent)
	}
	var stopper serverStopper
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		reason := waitForShutdown(ctx, os.Getppid(), parentPollInterval, os.Getppid)
		if reason != "" {
			o.logger.Warn("shutting down plugin", "reason", reason)
			stopper.stop()
		}
	}()
	glue := &shim.Plugin{Impl: store, Limits: o.limits, NoSharedMemory: o.noShm}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake(),
		Plugins:         plugin.PluginSet{shim.PluginName: glue},
		GRPCServer: func(sopts []grpc.ServerOption) *grpc.Server {
			return stopper.set(plugin.DefaultGRPCServer(append(sopts, shim.ServerOptions()...)))
		},
		Logger: o.logger,
	})
	cancel()
	wg.Wait()
	glue.Stop() // the data channel: no append may reach the store after Close
	if err := store.Close(); err != nil {
		o.logger.Error("close store", "err", err)
	}
}

// serverStopper hands the gRPC server that go-plugin builds to the shutdown
// watcher; a stop requested before the server exists applies on creation.
type serverStopper struct {
	mu      sync.Mutex
	srv     *grpc.Server
	stopped bool
}

func (s *serverStopper) set(srv *grpc.Server) *grpc.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv = srv
	if s.stopped {
		srv.Stop()
	}
	return srv
}

func (s *serverStopper) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.srv != nil {
		// Stop, not GracefulStop: the host is gone or asked us to go, and
		// in-flight calls have nobody left to answer to.
		s.srv.Stop()
	}
}

// waitForShutdown blocks until ctx is done (returns ""), SIGTERM arrives, or
// the parent process is gone — detected as getppid() no longer returning
// the pid the plugin started with, because an orphan is re-parented to init
// or a subreaper. It returns why the plugin should stop.
//
// SIGTERM while the parent is still there starts a grace period (termGrace)
// instead: the node is probably shutting down too and will stop the plugin
// itself once it no longer needs the store.
func waitForShutdown(ctx context.Context, parent int, interval time.Duration, getppid func() int) string {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	defer signal.Stop(sigs)
	return watchParent(ctx, parent, interval, getppid, sigs, termGrace)
}

func watchParent(ctx context.Context, parent int, interval time.Duration, getppid func() int, sigs <-chan os.Signal, grace time.Duration) string {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var graceC <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return ""
		case sig := <-sigs:
			if getppid() != parent {
				return "received " + sig.String() + " and the parent process is gone"
			}
			if graceC == nil {
				graceTimer := time.NewTimer(grace)
				defer graceTimer.Stop()
				graceC = graceTimer.C
			}
		case <-graceC:
			return fmt.Sprintf("received SIGTERM and the node did not stop the plugin within %v", grace)
		case <-tick.C:
			if getppid() != parent {
				return "parent process is gone"
			}
		}
	}
}
