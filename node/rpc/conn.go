package rpc

import (
	"bufio"
	"net"
	"sync"
)

// writer coalesces frames from concurrent goroutines into few writes.
type writer struct {
	conn net.Conn

	mu      sync.Mutex
	pending []byte
	spare   []byte
	err     error
	wake    chan struct{}
	done    chan struct{}
}

func newWriter(c net.Conn) *writer {
	return &writer{conn: c, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// enqueue adds a frame; it never blocks on the network.
func (w *writer) enqueue(id uint64, kind byte, payload []byte) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.pending = appendFrame(w.pending, id, kind, payload)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// run writes pending frames until stop is closed or a write fails.
func (w *writer) run(stop <-chan struct{}) {
	defer close(w.done)
	for {
		select {
		case <-stop:
			return
		case <-w.wake:
		}
		for {
			w.mu.Lock()
			buf := w.pending
			if len(buf) == 0 {
				w.mu.Unlock()
				break
			}
			w.pending = w.spare[:0]
			w.mu.Unlock()
			_, err := w.conn.Write(buf)
			w.mu.Lock()
			if cap(buf) <= 4<<20 {
				w.spare = buf[:0] // reuse moderate buffers only
			}
			if err != nil {
				w.err = err
				w.mu.Unlock()
				_ = w.conn.Close()
				return
			}
			w.mu.Unlock()
		}
	}
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 64<<10) }
