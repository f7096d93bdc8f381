package shim

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/walrus-go/walrus/engine"
)

const (
	// maxRequestFrameBytes bounds one data channel request: a chunk of
	// payload, its entry lengths, the topic and the fixed fields.
	maxRequestFrameBytes = ChunkBytes + 4*MaxBatchEntries + 1<<16 + 64
	// maxResponseFrameBytes bounds one response (an error message).
	maxResponseFrameBytes = 1 << 20
	// dcMaxInFlight bounds the appends one connection runs at once; the
	// reader stops reading (back-pressure) when they are all busy.
	dcMaxInFlight = 256
	// tokenTimeout bounds the wait for a new connection's token.
	tokenTimeout = 10 * time.Second
	// dataDirPrefix names the private directory of a data channel socket.
	dataDirPrefix = "walrus-plugin-"
)

// dataServer serves small appends on a plain Unix socket in a private
// directory (mode 0700), for connections that present the token first.
// Owned by a Server; stop ends every connection and waits for them.
type dataServer struct {
	store engine.SegmentStore
	ln    net.Listener
	dir   string
	token []byte

	ctx    context.Context // cancelled by stop: in-flight appends see it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	// shm: connections may hand over a shared ring (shm_server.go).
	shm bool
}

// startDataServer starts the channel; with shm, connections that bring a
// ring descriptor with their token are served through the ring.
func startDataServer(store engine.SegmentStore, shm bool) (*dataServer, error) {
	dir, err := os.MkdirTemp("", dataDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("data channel: %w", err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "data.sock"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("data channel: %w", err)
	}
	token := make([]byte, tokenBytes)
	_, _ = rand.Read(token) // crypto/rand.Read never fails
	ctx, cancel := context.WithCancel(context.Background())
	d := &dataServer{store: store, ln: ln, dir: dir, token: token, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}, shm: shm}
	d.wg.Add(1)
	go d.acceptLoop()
	return d, nil
}

func (d *dataServer) address() string { return d.ln.Addr().String() }

// stop closes the listener and every connection, waits for in-flight
// appends, and removes the socket directory.
func (d *dataServer) stop() {
	d.cancel()
	_ = d.ln.Close()
	d.mu.Lock()
	for c := range d.conns {
		_ = c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
	_ = os.RemoveAll(d.dir)
}

func (d *dataServer) acceptLoop() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			if d.ctx.Err() != nil {
				return // listener closed by stop
			}
			// A transient failure (out of descriptors): retry shortly
			// rather than stop serving the channel for good.
			select {
			case <-d.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		d.mu.Lock()
		if d.ctx.Err() != nil {
			d.mu.Unlock()
			_ = c.Close()
			return
		}
		d.conns[c] = struct{}{}
		d.wg.Add(1)
		d.mu.Unlock()
		go d.serveConn(c)
	}
}

func (d *dataServer) serveConn(c net.Conn) {
	defer d.wg.Done()
	defer func() {
		d.mu.Lock()
		delete(d.conns, c)
		d.mu.Unlock()
		_ = c.Close()
	}()
	ctx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	var handlers sync.WaitGroup
	defer handlers.Wait()

	_ = c.SetReadDeadline(time.Now().Add(tokenTimeout))
	got, fd, err := readToken(c)
	if err != nil || subtle.ConstantTimeCompare(got, d.token) != 1 {
		if fd >= 0 {
			closeFd(fd)
		}
		return
	}
	if fd >= 0 {
		d.serveShm(ctx, c, fd)
		return
	}
	_ = c.SetReadDeadline(time.Time{})

	br := bufio.NewReaderSize(c, 64<<10)
	w := frameWriter{conn: c}
	sem := make(chan struct{}, dcMaxInFlight)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n > maxRequestFrameBytes {
			return // cannot resync a stream with a bad length
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		req, err := decodeRequest(body)
		if err != nil {
			return
		}
		handle := func() {
			resp := dcResponse{id: req.id, ok: true}
			first, err := d.store.Append(ctx, engine.SegmentID{Topic: req.topic, Segment: req.segment}, req.entries)
			if err != nil {
				code, reason := classify(err)
				resp = dcResponse{id: req.id, code: uint32(code), reason: reason, message: err.Error()}
			} else {
				resp.first = first
			}
			// A failed write means the host is gone; the read loop ends too.
			_ = w.write(appendResponseFrame(make([]byte, 0, 32), resp), nil)
		}
		// Nothing else waiting and nothing running: answer inline, which
		// saves a goroutine hand-off (and a thread wake-up) per call. With
		// more requests queued, run them concurrently so the store can
		// group-commit them as it would concurrent calls in process.
		if br.Buffered() == 0 && len(sem) == 0 {
			handle()
			continue
		}
		sem <- struct{}{}
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			defer func() { <-sem }()
			handle()
		}()
	}
}
