package daemon

import (
	"log/slog"
	"strconv"
	"testing"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func itoa(n int) string { return strconv.Itoa(n) }
