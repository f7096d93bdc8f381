package hclogslog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
)

// LineWriter calls log once per complete line written to it; a trailing
// partial line waits for its newline (or Flush). Safe for concurrent use.
type LineWriter struct {
	log func(line string)
	mu  sync.Mutex
	buf bytes.Buffer
}

// NewLineWriter returns a writer that logs each line at level with the
// attribute stream=stream on l (nil means discard).
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
