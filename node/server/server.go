package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
)

// Handler executes requests. Handle receives a run of requests that arrived
// back-to-back on one connection, must execute them in order and return
// exactly one reply per request, in the same order. ctx is cancelled when
// the server closes. Handle is never called concurrently for one
// connection. The requests' Payload slices are owned by the handler (the
// server never reuses their memory), but the reqs slice itself is reused
// for the next batch: do not keep it after Handle returns.
type Handler interface {
	Handle(ctx context.Context, reqs []protocol.Request) []protocol.Reply
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, reqs []protocol.Request) []protocol.Reply

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, reqs []protocol.Request) []protocol.Reply {
	return f(ctx, reqs)
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("server: closed")

// Server is the client listener. Build it with New.
type Server struct {
	cfg     Config
	handler Handler
	log     *slog.Logger

	ctx    context.Context // cancelled by Close; parent of every Handle ctx
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup // connection goroutines and Serve loops
}

// New returns a Server. cfg zero fields take defaults; out-of-range fields
// are replaced by their defaults and logged (call cfg.Validate first to
// reject them instead). A nil logger discards; the caller tags it (e.g.
// with a component attribute).
func New(cfg Config, h Handler, logger *slog.Logger) *Server {
	if h == nil {
		panic("server.New: nil Handler")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		logger.Warn("invalid client listener config, using defaults for the bad fields", "err", err)
		d := DefaultConfig()
		if cfg.MaxFrameBytes < 0 || cfg.MaxFrameBytes > MaxFrameBytesMax {
			cfg.MaxFrameBytes = d.MaxFrameBytes
		}
		if cfg.MaxBatch < 0 || cfg.MaxBatch > MaxBatchLimit {
			cfg.MaxBatch = d.MaxBatch
		}
		if cfg.MaxConns < 0 {
			cfg.MaxConns = d.MaxConns
		}
		if cfg.MaxBatchBytes < 0 {
			cfg.MaxBatchBytes = d.MaxBatchBytes
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:       cfg.withDefaults(),
		handler:   h,
		log:       logger,
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]struct{}),
	}
}

// Serve accepts connections on ln until ctx is cancelled or Close is
// called (then it returns nil), or ln fails permanently (it returns that
// error). It logs the seed's "Client listener bound" line with the address,
// so callers need not. Serve closes ln before returning. It may be called
// for several listeners; after Close it returns ErrServerClosed at once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		_ = ln.Close()
	}()

	// Closing the listener is what unblocks Accept when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()

	s.log.Info("Client listener bound", "addr", ln.Addr().String())
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || s.isClosed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// e.g. EMFILE: wait a little instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "err", err, "backoff", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return nil
				case <-s.ctx.Done():
					return nil
				}
				continue
			}
			return err
		}
		backoff = 0
		s.track(conn)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track registers conn and starts its goroutine, or refuses it when the
// server is closed or full.
func (s *Server) track(conn net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	full := len(s.conns) >= s.cfg.MaxConns
	if !full {
		s.conns[conn] = struct{}{}
	}
	s.wg.Add(1)
	s.mu.Unlock()

	if full {
		go func() {
			defer s.wg.Done()
			s.refuse(conn)
		}()
		return
	}
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
			_ = conn.Close()
		}()
		defer func() {
			// A bug in this package must cost one connection, not the node.
			if p := recover(); p != nil {
				s.log.Error("client connection panicked", "err", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
		}()
		newConnState(s, conn).serve()
	}()
}

// refuse answers a connection over the limit with one framed error.
func (s *Server) refuse(conn net.Conn) {
	defer conn.Close()
	s.log.Warn("refusing client connection: too many connections", "remote", conn.RemoteAddr().String(), "max_conns", s.cfg.MaxConns)
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write(protocol.AppendReplyFrame(nil, protocol.Errf("too many connections (max %d)", s.cfg.MaxConns))); err != nil {
		return
	}
	// As in lingeringClose: FIN first, so a request already in flight does
	// not turn the close into a reset that swallows the reply.
	if cw, ok := conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		_ = conn.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.CopyN(io.Discard, conn, lingerBytes)
	}
}

// Close stops every listener, cancels in-flight Handle calls, closes every
// connection and waits for all goroutines. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// Conns is the number of open client connections.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
