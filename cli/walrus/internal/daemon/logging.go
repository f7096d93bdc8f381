package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/walrus-go/walrus/configs"
)

// newLogger builds the daemon's slog logger from the log section: text or
// JSON, at the configured level, to log.file (appended, created with its
// directory) or to stderr. The returned func closes the file.
func newLogger(c configs.LogConfig, stderr io.Writer) (*slog.Logger, func() error, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(c.Level))); err != nil {
		return nil, nil, fmt.Errorf("%w: log.level = %q: %w", configs.ErrInvalid, c.Level, err)
	}
	w, closeFn := stderr, func() error { return nil }
	if c.File != "" {
		if err := os.MkdirAll(filepath.Dir(c.File), 0o755); err != nil {
			return nil, nil, fmt.Errorf("log.file %s: %w", c.File, err)
		}
		f, err := os.OpenFile(c.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("log.file %s: %w", c.File, err)
		}
		w, closeFn = f, f.Close
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h), closeFn, nil
}
