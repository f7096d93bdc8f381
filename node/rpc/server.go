package rpc

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
)

// Handler serves one request. It runs on its own goroutine, so requests
// on one connection execute concurrently; a returned error reaches the
// caller as *Error (use *Error to choose the code).
type Handler interface {
	HandleRPC(ctx context.Context, method byte, payload []byte) ([]byte, error)
}

// AsyncHandler is an optional extension of Handler: HandleRPCAsync may take
// a request without blocking and answer later through reply (exactly once,
// from any goroutine). It returns false to let HandleRPC serve the request
// on its own goroutine instead. It saves a goroutine per request on hot
// methods whose work is already queued elsewhere.
type AsyncHandler interface {
	HandleRPCAsync(ctx context.Context, method byte, payload []byte, reply func([]byte, error)) bool
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, method byte, payload []byte) ([]byte, error)

// HandleRPC implements Handler.
func (f HandlerFunc) HandleRPC(ctx context.Context, method byte, payload []byte) ([]byte, error) {
	return f(ctx, method, payload)
}

// Server serves RPC connections.
type Server struct {
	h      Handler
	logger *slog.Logger
}

// NewServer returns a server dispatching to h.
func NewServer(h Handler, logger *slog.Logger) *Server {
	return &Server{h: h, logger: logger}
}

// Serve accepts connections from ln until ctx is cancelled or ln fails;
// it closes ln and waits for every connection and handler to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, c)
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	w := newWriter(c)
	var wg sync.WaitGroup
	stopWriter := make(chan struct{})
	wg.Add(1)
	go func() { defer wg.Done(); w.run(stopWriter) }()
	unwatch := context.AfterFunc(ctx, func() { _ = c.Close() })

	var handlers sync.WaitGroup
	r := newReader(c)
	var hdr [headerBytes]byte
	for {
		id, method, payload, err := readFrame(r, &hdr)
		if err != nil {
			break
		}
		if ah, ok := s.h.(AsyncHandler); ok {
			handlers.Add(1)
			var once sync.Once
			reply := func(resp []byte, herr error) {
				once.Do(func() {
					defer handlers.Done()
					if herr != nil {
						_ = w.enqueue(id, statusErr, encodeError(herr))
						return
					}
					_ = w.enqueue(id, statusOK, resp)
				})
			}
			if ah.HandleRPCAsync(ctx, method, payload, reply) {
				continue
			}
			handlers.Done()
		}
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			resp, herr := s.h.HandleRPC(ctx, method, payload)
			if herr != nil {
				_ = w.enqueue(id, statusErr, encodeError(herr))
				return
			}
			_ = w.enqueue(id, statusOK, resp)
		}()
	}
	// The peer closed (or ctx ended): let handlers finish, flush, close.
	cancel()
	handlers.Wait()
	unwatch()
	close(stopWriter)
	wg.Wait()
	_ = c.Close()
}
