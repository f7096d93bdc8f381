package metrics

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HTTP server limits. A scrape of one node is small; the limits only stop
// a misbehaving client from holding connections or goroutines forever.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpWriteTimeout      = 30 * time.Second
	httpIdleTimeout       = 60 * time.Second
	httpShutdownTimeout   = 5 * time.Second
	scrapeTimeout         = 10 * time.Second
	maxConcurrentScrapes  = 4
)

// ErrServerStarted is returned by Start when the server was already started.
var ErrServerStarted = errors.New("metrics: http server already started")

// HTTPServer serves one node's /metrics, /healthz and /readyz.
//
//   - /metrics: the node's registry in the Prometheus text format.
//   - /healthz: 200 "ok" as long as the process serves HTTP.
//   - /readyz: 200 {"ready":true} when ready() says so, otherwise 503
//     {"ready":false,"reason":"..."}. ready is supplied by the node (has a
//     Raft leader, storage healthy, caught up); it runs on every probe, so
//     it must be cheap and must not block. A nil ready is always ready.
type HTTPServer struct {
	addr   string
	ready  func() (bool, string)
	logger *slog.Logger
	mux    *http.ServeMux
	auth   httpAuth
	m      *Metrics

	mu      sync.Mutex
	tls     *tls.Config
	started bool
	closed  bool
	ln      net.Listener
	srv     *http.Server
	stop    chan struct{}
	wg      sync.WaitGroup
}

// NewHTTPServer returns a server for addr ("host:port"; port 0 picks a free
// one, see Addr). Nothing listens until Start. A nil logger discards.
func NewHTTPServer(addr string, m *Metrics, ready func() (bool, string), logger *slog.Logger) *HTTPServer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &HTTPServer{addr: addr, ready: ready, logger: logger.With("component", "metrics-http"), stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.guard(true, promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{
		ErrorLog:            promErrorLog{s.logger},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxConcurrentScrapes,
		Timeout:             scrapeTimeout,
	})))
	mux.Handle("/healthz", s.guard(false, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})))
	mux.HandleFunc("/readyz", s.serveReady)
	s.mux = mux
	s.m = m
	return s
}

// SetTLS makes Start serve HTTPS with cfg (its handshakes are bounded by
// the server's header timeout). Call it before Start.
func (s *HTTPServer) SetTLS(cfg *tls.Config) {
	s.mu.Lock()
	s.tls = cfg
	s.mu.Unlock()
}

// EnablePprof serves Go's runtime profiles under /debug/pprof/, behind
// the same authentication as /metrics. Call it before Start.
func (s *HTTPServer) EnablePprof() {
	s.mux.Handle("/debug/pprof/", s.guard(true, http.HandlerFunc(pprof.Index)))
	s.mux.Handle("/debug/pprof/cmdline", s.guard(true, http.HandlerFunc(pprof.Cmdline)))
	s.mux.Handle("/debug/pprof/profile", s.guard(true, http.HandlerFunc(pprof.Profile)))
	s.mux.Handle("/debug/pprof/symbol", s.guard(true, http.HandlerFunc(pprof.Symbol)))
	s.mux.Handle("/debug/pprof/trace", s.guard(true, http.HandlerFunc(pprof.Trace)))
}

// Handler returns the server's handler (for tests or embedding in another
// server).
func (s *HTTPServer) Handler() http.Handler { return s.mux }

type readyBody struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

func (s *HTTPServer) serveReady(w http.ResponseWriter, _ *http.Request) {
	ok, reason := true, ""
	if s.ready != nil {
		ok, reason = s.ready()
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		if reason == "" {
			reason = "not ready"
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		reason = ""
	}
	body, _ := json.Marshal(readyBody{Ready: ok, Reason: reason})
	_, _ = w.Write(append(body, '\n'))
}

// Start binds the listener (so a bad or busy address fails here, not later)
// and serves in a background goroutine until Close is called or ctx is
// cancelled.
func (s *HTTPServer) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("metrics: start http server: %w", http.ErrServerClosed)
	}
	if s.started {
		return ErrServerStarted
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", s.addr, err)
	}
	s.started = true
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.logger.Info("Metrics listener bound", "addr", ln.Addr().String(), "tls", s.tls != nil)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("metrics http server stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
			s.shutdown()
		case <-s.stop:
		}
	}()
	return nil
}

// Addr returns the bound address after Start (useful with port 0), or the
// configured address before.
func (s *HTTPServer) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.addr
}

// Close stops the server, waiting for in-flight requests up to a few
// seconds and for its goroutines to exit. It is idempotent.
func (s *HTTPServer) Close() error {
	err := s.shutdown()
	s.wg.Wait()
	return err
}

func (s *HTTPServer) shutdown() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		// Stragglers past the deadline are cut off.
		_ = srv.Close()
		return fmt.Errorf("metrics: shutdown http server: %w", err)
	}
	return nil
}

// promErrorLog adapts slog to promhttp's Println-style error logger.
type promErrorLog struct{ logger *slog.Logger }

func (l promErrorLog) Println(v ...any) {
	l.logger.Warn("metrics scrape error", "err", fmt.Sprint(v...))
}
