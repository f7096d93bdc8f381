package metrics

import (
	"context"
	"log/slog"
)

// CountingHandler wraps next so that every record at WARN or above is
// counted in m.LogMessages (level="warn" or "error") before being passed
// on. It counts records even when next filters them out, so the
// "elevated error log rate" alert works whatever the configured log level.
// It backs the seed's advice to alert on ERROR lines ("monitor tick
// failed", "Raft consensus failed", "NotLeaderError", "Lease sync failed").
func CountingHandler(next slog.Handler, m *Metrics) slog.Handler {
	return &countingHandler{next: next, m: m}
}

type countingHandler struct {
	next slog.Handler
	m    *Metrics
}

func (h *countingHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn || h.next.Enabled(ctx, level)
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	switch {
	case r.Level >= slog.LevelError:
		h.m.LogMessages.WithLabelValues("error").Inc()
	case r.Level >= slog.LevelWarn:
		h.m.LogMessages.WithLabelValues("warn").Inc()
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &countingHandler{next: h.next.WithAttrs(attrs), m: h.m}
}

func (h *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandler{next: h.next.WithGroup(name), m: h.m}
}
