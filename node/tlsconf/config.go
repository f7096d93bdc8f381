package tlsconf

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// HandshakeTimeout bounds a TLS handshake on an accepted connection.
const HandshakeTimeout = 10 * time.Second

// ClientConfig is a client's configuration from files: caFile (empty: the
// system roots) verifies the server, certFile and keyFile (both or
// neither) are the client certificate for a listener that requires one.
// The server name is left empty: node/client fills in the dialed host.
func ClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := LoadPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CA file: %w", ErrInvalid, err)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("%w: a client certificate needs both the certificate and the key file", ErrInvalid)
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate: %w", ErrInvalid, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// NewListener returns inner with TLS on every accepted connection. Accept
// returns at once; the handshake runs, bounded by HandshakeTimeout, on the
// connection's first Read or Write (so in its own goroutine). A failed
// handshake is logged with the remote address, and every Read and Write
// of that connection returns the error: nothing a client sent before a
// completed handshake reaches the caller.
func NewListener(inner net.Listener, cfg *tls.Config, logger *slog.Logger) net.Listener {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &listener{Listener: inner, cfg: cfg, logger: logger}
}

type listener struct {
	net.Listener
	cfg    *tls.Config
	logger *slog.Logger
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: tls.Server(c, l.cfg), logger: l.logger}, nil
}

// serverConn completes its handshake before the first byte moves.
type serverConn struct {
	*tls.Conn
	logger *slog.Logger
	once   sync.Once
	err    error
}

// ErrHandshake is wrapped by the Read and Write errors of a connection
// whose handshake failed.
var ErrHandshake = errors.New("tls: handshake failed")

func (c *serverConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), HandshakeTimeout)
		defer cancel()
		if err := c.Conn.HandshakeContext(ctx); err != nil {
			c.err = fmt.Errorf("%w: %w", ErrHandshake, err)
			c.logger.Warn("TLS handshake failed; connection closed", "remote", c.RemoteAddr().String(), "err", err)
		}
	})
	return c.err
}

func (c *serverConn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *serverConn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
