package shim

import (
	"net"
	"sync"
)

// frameWriter writes whole frames to a connection from many goroutines,
// combining them: a writer that finds no write in progress writes its own
// frame at once (no hand-off, no copy); frames that arrive meanwhile are
// queued and the writer in progress writes them all in one more syscall
// before it returns. Under load one write carries many frames; idle, a
// frame costs exactly one write.
type frameWriter struct {
	conn     net.Conn
	mu       sync.Mutex
	queued   []byte
	flushing bool
}

// write sends frame (or queues it behind the write in progress); before,
// if set, runs before each syscall (to set a deadline). An error
// means the connection is broken; frames queued by others are lost with it
// and their callers learn it from the connection's failure.
func (w *frameWriter) write(frame []byte, before func(net.Conn)) error {
	w.mu.Lock()
	if w.flushing {
		w.queued = append(w.queued, frame...)
		w.mu.Unlock()
		return nil
	}
	w.flushing = true
	w.mu.Unlock()
	buf := frame
	for {
		if before != nil {
			before(w.conn)
		}
		_, err := w.conn.Write(buf)
		w.mu.Lock()
		if err != nil || len(w.queued) == 0 {
			w.flushing = false
			w.queued = nil
			w.mu.Unlock()
			return err
		}
		buf, w.queued = w.queued, nil
		w.mu.Unlock()
	}
}
