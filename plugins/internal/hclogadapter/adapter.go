// Package hclogadapter lets go-plugin, which logs through hclog, write into
// the node's *slog.Logger. go-plugin re-levels each JSON line a plugin
// writes to stderr (@level, @message) and logs it through this adapter, so
// a plugin's warnings arrive in the node's log as warnings, tagged with the
// plugin's name.
//
// Concurrency: a Logger is immutable and safe for concurrent use.
package hclogadapter

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/walrus-go/walrus/internal/hclogfmt"
)

// LevelTrace is the slog level hclog's Trace maps to.
const LevelTrace = slog.LevelDebug - 4

// Logger adapts a *slog.Logger to hclog.Logger.
type Logger struct {
	slog    *slog.Logger
	name    string
	implied []any
}

var _ hclog.Logger = (*Logger)(nil)

// New wraps l (nil means discard).
func New(l *slog.Logger) *Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Logger{slog: l}
}

func toSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return LevelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Log writes msg at level; args are hclog's alternating keys and values.
func (l *Logger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	sl := toSlog(level)
	if !l.slog.Enabled(context.Background(), sl) {
		return
	}
	// go-plugin logs the executable under "plugin", which the host already
	// uses for the plugin's name.
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == "plugin" {
			args = append([]any(nil), args...)
			args[i] = "plugin_path"
		}
	}
	if l.name != "" {
		args = append([]any{"logger", l.name}, args...)
	}
	l.slog.Log(context.Background(), sl, msg, hclogfmt.Args(args)...)
}

func (l *Logger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *Logger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *Logger) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *Logger) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *Logger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *Logger) enabled(level hclog.Level) bool {
	return l.slog.Enabled(context.Background(), toSlog(level))
}

func (l *Logger) IsTrace() bool { return l.enabled(hclog.Trace) }
func (l *Logger) IsDebug() bool { return l.enabled(hclog.Debug) }
func (l *Logger) IsInfo() bool  { return l.enabled(hclog.Info) }
func (l *Logger) IsWarn() bool  { return l.enabled(hclog.Warn) }
func (l *Logger) IsError() bool { return l.enabled(hclog.Error) }

// ImpliedArgs returns the arguments added with With.
func (l *Logger) ImpliedArgs() []any { return l.implied }

// With returns a logger that adds args to every line.
func (l *Logger) With(args ...any) hclog.Logger {
	return &Logger{slog: l.slog.With(args...), name: l.name, implied: append(append([]any(nil), l.implied...), args...)}
}

// Name returns the logger's name ("" at the root).
func (l *Logger) Name() string { return l.name }

// Named returns a sub-logger whose name is appended with a dot; the name is
// logged under the key "logger".
func (l *Logger) Named(name string) hclog.Logger {
	if l.name != "" {
		name = l.name + "." + name
	}
	return &Logger{slog: l.slog, name: name, implied: l.implied}
}

// ResetNamed returns a sub-logger with exactly name.
func (l *Logger) ResetNamed(name string) hclog.Logger {
	return &Logger{slog: l.slog, name: name, implied: l.implied}
}

// SetLevel is a no-op: the slog handler owns the level.
func (l *Logger) SetLevel(hclog.Level) {}

// GetLevel reports the lowest level the slog handler accepts, so go-plugin
// skips parsing plugin lines that would be dropped anyway.
func (l *Logger) GetLevel() hclog.Level {
	for _, lv := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if l.enabled(lv) {
			return lv
		}
	}
	return hclog.Off
}

// StandardLogger returns a *log.Logger writing through this logger.
func (l *Logger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer that logs each line at Info (or at the
// level opts forces).
func (l *Logger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return &LineWriter{log: func(line string) { l.Log(level, line) }}
}

// LineWriter calls log once per complete line written to it; a trailing
// partial line waits for its newline (or Flush). Safe for concurrent use.
type LineWriter struct {
	log func(line string)
	mu  sync.Mutex
	buf bytes.Buffer
}

// NewLineWriter returns a writer that logs each line at level with the
// attribute stream=stream on l.
func NewLineWriter(l *slog.Logger, level slog.Level, stream string) *LineWriter {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &LineWriter{log: func(line string) { l.Log(context.Background(), level, line, "stream", stream) }}
}

// maxLineBytes bounds a buffered partial line; longer ones are logged in
// pieces.
const maxLineBytes = 64 << 10

func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		data := w.buf.Bytes()
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if len(data) > maxLineBytes {
				w.log(string(data))
				w.buf.Reset()
			}
			return len(p), nil
		}
		w.log(strings.TrimRight(string(data[:i]), "\r"))
		w.buf.Next(i + 1)
	}
}

// Flush logs a pending partial line.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.log(w.buf.String())
		w.buf.Reset()
	}
}
