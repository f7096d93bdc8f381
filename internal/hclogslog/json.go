package hclogslog

import (
	"io"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// NewJSON returns a logger that writes one JSON object per line to w in
// hclog's shape (@level, @message, @timestamp, @module): the shape
// go-plugin on the host parses to re-level a plugin's stderr lines into the
// node's log. Lines below level are dropped.
func NewJSON(w io.Writer, module string, level slog.Level) *slog.Logger {
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
				return slog.String("@level", fromSlog(a.Value.Any().(slog.Level)).String())
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	})
	return slog.New(h).With("@module", module)
}

// fromSlog is the inverse of toSlog except that everything below Info,
// LevelTrace included, is debug: go-plugin's host maps a plugin's trace
// lines to Trace, which the node never logs.
func fromSlog(l slog.Level) hclog.Level {
	switch {
	case l < slog.LevelInfo:
		return hclog.Debug
	case l < slog.LevelWarn:
		return hclog.Info
	case l < slog.LevelError:
		return hclog.Warn
	}
	return hclog.Error
}
