package pluginhost

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// Defaults for Config fields left zero.
const (
	DefaultStartTimeout      = 30 * time.Second
	DefaultRestartBackoffMin = 100 * time.Millisecond
	DefaultRestartBackoffMax = 10 * time.Second
	DefaultProbeInterval     = 5 * time.Second
	DefaultProbeTimeout      = 10 * time.Second
	DefaultProbeFailures     = 3
	// MaxStartTimeout bounds StartTimeout (a plugin that needs longer to
	// recover should serve first and recover lazily).
	MaxStartTimeout = 10 * time.Minute
)

// Config says which plugin to run and how. Path is required; everything
// else has a default.
type Config struct {
	// Name tags the plugin's log lines (plugin=<Name>) and errors; default
	// the base name of Path.
	Name string
	// Path is the plugin executable.
	Path string
	// Args are passed to the executable (not including argv[0]).
	Args []string
	// Env entries ("KEY=value") are added to the node's environment for the
	// plugin; they win over the node's variables of the same name.
	Env []string
	// SHA256 is the expected hex SHA-256 of the executable; when set it is
	// checked before every launch and a mismatch refuses to run it.
	SHA256 string
	// StartTimeout bounds one launch until the handshake (default 30 s).
	StartTimeout time.Duration
	// Logger receives the host's and the plugin's log lines (nil: discard).
	Logger *slog.Logger
	// OnRestart is called after each successful restart of a crashed
	// plugin (for a metrics counter); it must not block.
	OnRestart func()
	// RestartBackoffMin and RestartBackoffMax bound the wait before each
	// relaunch attempt; it doubles per failed attempt (defaults 100 ms, 10 s).
	RestartBackoffMin, RestartBackoffMax time.Duration
	// CallTimeout is the deadline of a call whose ctx has none (default 30 s).
	CallTimeout time.Duration
	// ProbeInterval is how often the supervisor checks that a running
	// plugin still answers (a Stat of a segment that does not exist);
	// ProbeTimeout bounds one probe. After ProbeFailures consecutive
	// failed probes the process is killed and restarted like a crashed
	// one. Defaults 5 s, 10 s, 3; ProbeInterval < 0 turns probing off.
	ProbeInterval, ProbeTimeout time.Duration
	ProbeFailures               int
	// Limits are the node's store limits; a Read result entry larger than
	// Limits.MaxEntryBytes is refused (default engine.DefaultLimits()).
	Limits engine.Limits
}

// withDefaults fills zero fields and validates the rest. Errors name the
// config key they concern.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Path == "" {
		errs = append(errs, fmt.Errorf("plugin path: required: %w", engine.ErrInvalidArgument))
	}
	if c.Name == "" {
		c.Name = filepath.Base(c.Path)
	}
	if c.SHA256 != "" {
		if b, err := hex.DecodeString(c.SHA256); err != nil || len(b) != 32 {
			errs = append(errs, fmt.Errorf("plugin sha256 %q: want 64 hex digits: %w", c.SHA256, engine.ErrInvalidArgument))
		}
	}
	switch {
	case c.StartTimeout == 0:
		c.StartTimeout = DefaultStartTimeout
	case c.StartTimeout < 0 || c.StartTimeout > MaxStartTimeout:
		errs = append(errs, fmt.Errorf("plugin start timeout %v: want (0, %v]: %w", c.StartTimeout, MaxStartTimeout, engine.ErrInvalidArgument))
	}
	if c.RestartBackoffMin <= 0 {
		c.RestartBackoffMin = DefaultRestartBackoffMin
	}
	if c.RestartBackoffMax <= 0 {
		c.RestartBackoffMax = DefaultRestartBackoffMax
	}
	if c.RestartBackoffMax < c.RestartBackoffMin {
		errs = append(errs, fmt.Errorf("plugin restart backoff max %v below min %v: %w", c.RestartBackoffMax, c.RestartBackoffMin, engine.ErrInvalidArgument))
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.ProbeFailures <= 0 {
		c.ProbeFailures = DefaultProbeFailures
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Limits == (engine.Limits{}) {
		c.Limits = engine.DefaultLimits()
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("pluginhost: invalid config: %w", err)
	}
	return c, nil
}
