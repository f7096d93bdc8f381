package pluginsdk

import (
	"io"
	"log/slog"
	"os"
	"strings"
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
	return newLogger(os.Stderr, module, level)
}

func newLogger(w io.Writer, module string, level slog.Level) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				// The exact layout go-plugin's host parses.
				return slog.String("@timestamp", a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
			case slog.LevelKey:
				return slog.String("@level", hclogLevel(a.Value.Any().(slog.Level)))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	})
	return slog.New(h).With("@module", module)
}

func hclogLevel(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}
