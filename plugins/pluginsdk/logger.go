package pluginsdk

import (
	"log/slog"
	"os"
	"strings"

	"github.com/walrus-go/walrus/internal/hclogslog"
)

// Logger returns a logger for the plugin's store that writes one JSON object
// per line to stderr in hclog's shape (@level, @message, @timestamp,
// @module), which go-plugin on the host parses and re-levels into the
// node's log. Call it before Serve (Serve redirects os.Stderr). Levels
// below Info are dropped unless WALRUS_PLUGIN_LOG_LEVEL=debug.
func Logger(module string) *slog.Logger {
	level := slog.LevelInfo
	if strings.EqualFold(os.Getenv("WALRUS_PLUGIN_LOG_LEVEL"), "debug") {
		level = slog.LevelDebug
	}
	return hclogslog.NewJSON(os.Stderr, module, level)
}
