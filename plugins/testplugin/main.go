// Command testplugin serves the in-memory reference store (memstore) as a
// plugin, for the host's tests. It keeps nothing across restarts.
//
// Test knobs (environment):
//
//	WALRUS_TESTPLUGIN_STARTED_FILE=path     create path at start (proves a
//	                                        refused executable never ran)
//	WALRUS_TESTPLUGIN_PROTOCOL_VERSION=n    answer the handshake with
//	                                        protocol version n
//	WALRUS_TESTPLUGIN_CHATTY=1              print a line to stdout on Sync
//	WALRUS_TESTPLUGIN_CPUPROFILE=path       write a CPU profile until exit
//	WALRUS_TESTPLUGIN_FAIL_IF_EXISTS=path   exit 1 at start while path exists
//	WALRUS_TESTPLUGIN_HANG=1                never complete the handshake
//	WALRUS_TESTPLUGIN_WEDGE_FILE=path       every call blocks while path exists
//	WALRUS_TESTPLUGIN_NO_SHM=1              decline the shared-memory ring (an
//	                                        older plugin)
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/walrus-go/walrus/backends/memstore"
	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/plugins/internal/shim"
	"github.com/walrus-go/walrus/plugins/pluginsdk"
)

func main() {
	logger := pluginsdk.Logger("testplugin")
	if path := os.Getenv("WALRUS_TESTPLUGIN_STARTED_FILE"); path != "" {
		if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			logger.Error("write started file", "err", err)
			os.Exit(1)
		}
	}
	if path := os.Getenv("WALRUS_TESTPLUGIN_FAIL_IF_EXISTS"); path != "" {
		if _, err := os.Stat(path); err == nil {
			logger.Error("refusing to start: fail file exists", "path", path)
			os.Exit(1)
		}
	}
	if os.Getenv("WALRUS_TESTPLUGIN_HANG") == "1" {
		// Bounded, so a leaked process ends by itself.
		time.Sleep(2 * time.Minute)
		os.Exit(1)
	}
	var store engine.SegmentStore = memstore.New()
	if path := os.Getenv("WALRUS_TESTPLUGIN_WEDGE_FILE"); path != "" {
		store = wedged{store, path}
	}
	if os.Getenv("WALRUS_TESTPLUGIN_CHATTY") == "1" {
		store = chatty{store}
	}
	if v := os.Getenv("WALRUS_TESTPLUGIN_PROTOCOL_VERSION"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			logger.Error("bad protocol version", "value", v)
			os.Exit(1)
		}
		hs := pluginsdk.Handshake()
		hs.ProtocolVersion = uint(n)
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: hs,
			Plugins:         plugin.PluginSet{shim.PluginName: &shim.Plugin{Impl: store}},
			GRPCServer:      plugin.DefaultGRPCServer,
		})
		return
	}
	if path := os.Getenv("WALRUS_TESTPLUGIN_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	var opts []pluginsdk.Option
	if os.Getenv("WALRUS_TESTPLUGIN_NO_SHM") == "1" {
		// Behaves like a plugin built before the shared-memory ring.
		opts = append(opts, pluginsdk.WithoutSharedMemory())
	}
	logger.Warn("testplugin serving memstore", "pid", os.Getpid())
	pluginsdk.Serve(store, opts...)
}

// chatty prints to stdout on Sync, to test that the host logs a plugin's
// stdout.
type chatty struct{ engine.SegmentStore }

func (c chatty) Sync(ctx context.Context) error {
	fmt.Println("testplugin: sync called")
	return c.SegmentStore.Sync(ctx)
}

// wedged blocks Stat and Append, ignoring ctx like a deadlocked store would,
// while its file exists (at most two minutes).
type wedged struct {
	engine.SegmentStore
	path string
}

func (w wedged) wait() {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(w.path); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (w wedged) Stat(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	w.wait()
	return w.SegmentStore.Stat(ctx, id)
}

func (w wedged) Append(ctx context.Context, id engine.SegmentID, entries [][]byte) (uint64, error) {
	w.wait()
	return w.SegmentStore.Append(ctx, id, entries)
}
