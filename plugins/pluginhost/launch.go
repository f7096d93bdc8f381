package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/walrus-go/walrus/internal/hclogslog"
	"github.com/walrus-go/walrus/plugins/internal/shim"
)

// instance is one running plugin process and the store client over it.
type instance struct {
	client  *plugin.Client
	store   *shim.Client
	pid     int
	started time.Time
	stdout  *hclogslog.LineWriter
	stderr  *hclogslog.LineWriter
}

// pluginVersionRE pulls the plugin's protocol version out of go-plugin's
// mismatch error, which has no typed form.
var pluginVersionRE = regexp.MustCompile(`Plugin version: (\d+)`)

// pluginKeyRenames moves go-plugin's "plugin" key (the executable's path)
// aside: the host's logger already carries plugin=<name>.
var pluginKeyRenames = map[string]string{"plugin": "plugin_path"}

// launch starts one plugin process and completes the handshake. It does not
// honour ctx midway (go-plugin's Start cannot be interrupted safely); ctx
// only shortens the start timeout.
func launch(ctx context.Context, cfg Config, logger *slog.Logger) (*instance, error) {
	timeout := cfg.StartTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pluginhost: start %s: %w", cfg.Name, err)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("pluginhost: start %s: %w", cfg.Name, context.DeadlineExceeded)
	}

	cmd := exec.Command(cfg.Path, cfg.Args...)
	// The node's environment first, the configured entries last so they
	// win (exec keeps the last duplicate). go-plugin adds its handshake
	// variables after these.
	cmd.Env = append(os.Environ(), cfg.Env...)
	setParentDeathSignal(cmd)

	var secure *plugin.SecureConfig
	if cfg.SHA256 != "" {
		sum, _ := hex.DecodeString(cfg.SHA256) // validated in withDefaults
		secure = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	inst := &instance{
		stdout: hclogslog.NewLineWriter(logger, slog.LevelInfo, "stdout"),
		stderr: hclogslog.NewLineWriter(logger, slog.LevelWarn, "stderr"),
	}
	inst.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  shim.Handshake(),
		Plugins:          plugin.PluginSet{shim.PluginName: &shim.Plugin{ClientOptions: shim.ClientOptions{CallTimeout: cfg.CallTimeout, Limits: cfg.Limits}}},
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		// Managed=false: this Store owns the process; go-plugin's global
		// client list (CleanupClients) is never used.
		Managed:      false,
		StartTimeout: timeout,
		Logger:       hclogslog.New(logger, hclogslog.Options{RenameKeys: pluginKeyRenames}),
		SyncStdout:   inst.stdout,
		SyncStderr:   inst.stderr,
		// We built cmd.Env with the node's environment already.
		SkipHostEnv:     true,
		GRPCDialOptions: shim.DialOptions(),
	})
	rpc, err := inst.client.Client()
	if err != nil {
		inst.client.Kill()
		return nil, startError(cfg, err)
	}
	raw, err := rpc.Dispense(shim.PluginName)
	if err != nil {
		inst.client.Kill()
		return nil, fmt.Errorf("pluginhost: start %s: dispense %s: %w", cfg.Name, shim.PluginName, err)
	}
	store, ok := raw.(*shim.Client)
	if !ok {
		inst.client.Kill()
		return nil, fmt.Errorf("pluginhost: start %s: dispensed %T, want *shim.Client", cfg.Name, raw)
	}
	inst.store = store
	inst.started = time.Now()
	if rc := inst.client.ReattachConfig(); rc != nil {
		inst.pid = rc.Pid
	}
	return inst, nil
}

// startError turns go-plugin's start failures into messages an operator can
// act on.
func startError(cfg Config, err error) error {
	if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
		return fmt.Errorf("pluginhost: start %s: the SHA-256 of %s does not match the configured sha256 %s; the executable was not run: %w",
			cfg.Name, cfg.Path, cfg.SHA256, err)
	}
	if m := pluginVersionRE.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("pluginhost: start %s: plugin speaks SegmentStore protocol version %s but this node speaks version %d; rebuild the plugin against this node's pluginsdk: %w",
			cfg.Name, m[1], shim.ProtocolVersion, err)
	}
	return fmt.Errorf("pluginhost: start %s (%s): %w", cfg.Name, cfg.Path, err)
}

// stop closes the plugin's store (so it flushes) and ends the process:
// gracefully through go-plugin, by SIGKILL if it does not exit within 2 s.
func (inst *instance) stop(closeStore bool) error {
	var err error
	if closeStore {
		err = inst.store.Close()
	}
	inst.client.Kill()
	// The process is gone now: release what is left on our side, including
	// a data channel socket a killed plugin could not remove.
	inst.store.Release()
	inst.stdout.Flush()
	inst.stderr.Flush()
	return err
}
