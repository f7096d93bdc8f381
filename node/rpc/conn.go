package rpc

import (
	"bufio"
	"net"
	"sync"
)

// writer coalesces frames from concurrent goroutines into few writes. The
// first enqueuer that finds the connection idle writes inline (no goroutine
// hand-off on an idle connection, which is what keeps a synchronous
// request/response cheap); frames that pile up meanwhile are written by
// the writer goroutine in one syscall.
type writer struct {
	conn net.Conn

	mu      sync.Mutex
	pending []byte
	spare   []byte
	writing bool // an inline writer or the goroutine owns the connection
	err     error
	wake    chan struct{}
	done    chan struct{}
}

func newWriter(c net.Conn) *writer {
	return &writer{conn: c, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// enqueue adds a frame; it writes at most one batch inline and never waits
// for another goroutine's write.
func (w *writer) enqueue(id uint64, kind byte, payload []byte) error {
	return w.enqueueEnc(id, kind, payload, nil)
}

// enqueueEnc is enqueue with the payload given either as bytes or, when
// enc is not nil, encoded by enc into the pending buffer.
func (w *writer) enqueueEnc(id uint64, kind byte, payload []byte, enc Encoder) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	if enc != nil {
		var err error
		if w.pending, err = appendEncodedFrame(w.pending, id, kind, enc); err != nil {
			w.mu.Unlock()
			return err
		}
	} else {
		w.pending = appendFrame(w.pending, id, kind, payload)
	}
	if w.writing {
		w.mu.Unlock()
		return nil
	}
	w.writing = true
	buf := w.pending
	w.pending, w.spare = w.spare[:0], nil
	w.mu.Unlock()

	_, err := w.conn.Write(buf)

	w.mu.Lock()
	w.recycle(buf)
	if err != nil {
		w.err = err
		w.writing = false
		w.mu.Unlock()
		_ = w.conn.Close()
		return err
	}
	if len(w.pending) == 0 {
		w.writing = false
		w.mu.Unlock()
		return nil
	}
	// More frames arrived: hand the connection to the writer goroutine.
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// recycle keeps a written buffer for the next batch. spare is cleared
// whenever it becomes pending, so it never aliases the buffer being
// filled (a large buffer that is not kept would otherwise leave spare
// pointing at the array enqueuers are appending to).
func (w *writer) recycle(buf []byte) {
	if cap(buf) <= 4<<20 {
		w.spare = buf[:0] // reuse moderate buffers only
	}
}

// run writes what enqueue handed over until stop is closed or a write
// fails.
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
				w.writing = false
				w.mu.Unlock()
				break
			}
			w.pending, w.spare = w.spare[:0], nil
			w.mu.Unlock()
			_, err := w.conn.Write(buf)
			w.mu.Lock()
			w.recycle(buf)
			if err != nil {
				w.err = err
				w.writing = false
				w.mu.Unlock()
				_ = w.conn.Close()
				return
			}
			w.mu.Unlock()
		}
	}
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 64<<10) }
