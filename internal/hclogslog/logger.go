package hclogslog

import (
	"context"
	"io"
	"log"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// LevelTrace is the slog level hclog's Trace maps to: below Debug, so a
// handler at Debug (the lowest level a node can be configured with) drops
// it.
const LevelTrace = slog.LevelDebug - 4

// DefaultNameKey is the attribute a Logger's name goes under when
// Options.NameKey is empty.
const DefaultNameKey = "logger"

// Options shape the lines a Logger writes. The zero value is valid.
type Options struct {
	// Name is the logger's initial name (hclog's Name); Named appends to it
	// with a dot. Default "" (no name attribute).
	Name string
	// NameKey is the attribute the name is logged under. Default
	// DefaultNameKey.
	NameKey string
	// RenameKeys renames argument keys at log time, for a library key that
	// would collide with one the caller already attaches. Default none.
	RenameKeys map[string]string
}

// Logger adapts a *slog.Logger to hclog.Logger.
type Logger struct {
	slog    *slog.Logger
	name    string
	nameKey string
	rename  map[string]string
	implied []any
	// level is the hclog.Level set by SetLevel (NoLevel: the handler alone
	// decides); atomic because SetLevel may race with Log.
	level atomic.Int32
}

var _ hclog.Logger = (*Logger)(nil)

// New wraps l (nil means discard).
func New(l *slog.Logger, o Options) *Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	if o.NameKey == "" {
		o.NameKey = DefaultNameKey
	}
	return &Logger{slog: l, name: o.Name, nameKey: o.NameKey, rename: o.RenameKeys}
}

// derive returns a copy with another name and implied arguments; the copy
// starts at this logger's current level.
func (l *Logger) derive(name string, implied []any) *Logger {
	c := &Logger{slog: l.slog, name: name, nameKey: l.nameKey, rename: l.rename, implied: implied}
	c.level.Store(l.level.Load())
	return c
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
// hclog.NoLevel logs at Info whatever the level; hclog.Off logs nothing.
func (l *Logger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || (level != hclog.NoLevel && level < l.floor()) {
		return
	}
	sl := toSlog(level)
	ctx := context.Background()
	if !l.slog.Enabled(ctx, sl) {
		return
	}
	all := make([]any, 0, 2+len(l.implied)+len(args))
	if l.name != "" {
		all = append(all, l.nameKey, l.name)
	}
	all = append(all, l.implied...)
	all = append(all, args...)
	l.slog.Log(ctx, sl, msg, l.prepare(all)...)
}

// prepare renders hclog.Fmt values and renames keys in place; all is the
// logger's own copy.
func (l *Logger) prepare(all []any) []any {
	for i, a := range all {
		if f, ok := a.(hclog.Format); ok {
			all[i] = renderFormat(f)
		}
	}
	if len(l.rename) == 0 {
		return all
	}
	for i := 0; i+1 < len(all); i += 2 {
		if k, ok := all[i].(string); ok {
			if to, ok := l.rename[k]; ok {
				all[i] = to
			}
		}
	}
	return all
}

func (l *Logger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *Logger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *Logger) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *Logger) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *Logger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *Logger) enabled(level hclog.Level) bool {
	return level >= l.floor() && l.slog.Enabled(context.Background(), toSlog(level))
}

func (l *Logger) IsTrace() bool { return l.enabled(hclog.Trace) }
func (l *Logger) IsDebug() bool { return l.enabled(hclog.Debug) }
func (l *Logger) IsInfo() bool  { return l.enabled(hclog.Info) }
func (l *Logger) IsWarn() bool  { return l.enabled(hclog.Warn) }
func (l *Logger) IsError() bool { return l.enabled(hclog.Error) }

// ImpliedArgs returns the arguments added with With.
func (l *Logger) ImpliedArgs() []any { return l.implied }

// With returns a logger that adds args to every line, after the name and
// before the line's own arguments.
func (l *Logger) With(args ...any) hclog.Logger {
	return l.derive(l.name, append(append([]any(nil), l.implied...), args...))
}

// Name returns the logger's name ("" at the root).
func (l *Logger) Name() string { return l.name }

// Named returns a sub-logger whose name is appended with a dot.
func (l *Logger) Named(name string) hclog.Logger {
	if l.name != "" {
		name = l.name + "." + name
	}
	return l.derive(name, l.implied)
}

// ResetNamed returns a sub-logger with exactly name.
func (l *Logger) ResetNamed(name string) hclog.Logger { return l.derive(name, l.implied) }

// SetLevel sets the floor below which lines are dropped even if the slog
// handler would accept them; it does not affect loggers derived earlier.
func (l *Logger) SetLevel(level hclog.Level) { l.level.Store(int32(level)) }

// floor is the level set by SetLevel.
func (l *Logger) floor() hclog.Level { return hclog.Level(l.level.Load()) }

// GetLevel reports the lowest level this logger writes, floor and handler
// combined: go-plugin reads it to skip parsing plugin lines that would be
// dropped anyway.
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
