package badgerstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// badgerLogger adapts slog to badger.Logger. Badger's Info level narrates
// routine housekeeping (tables opened, compactions, value-log replays), so
// it is logged at slog Debug to keep a node's default output to what an
// operator acts on; warnings and errors keep their level.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) log(level slog.Level, format string, args []any) {
	ctx := context.Background() // badger's Logger interface carries no context
	if !b.l.Enabled(ctx, level) {
		return
	}
	b.l.Log(ctx, level, strings.TrimRight(fmt.Sprintf(format, args...), "\n"))
}

func (b badgerLogger) Errorf(format string, args ...any)   { b.log(slog.LevelError, format, args) }
func (b badgerLogger) Warningf(format string, args ...any) { b.log(slog.LevelWarn, format, args) }
func (b badgerLogger) Infof(format string, args ...any)    { b.log(slog.LevelDebug, format, args) }
func (b badgerLogger) Debugf(format string, args ...any)   { b.log(slog.LevelDebug-4, format, args) }
