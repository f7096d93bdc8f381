package mux

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Connection tags (the first byte a dialer writes).
const (
	TagRaft byte = 'R'
	TagRPC  byte = 'W'
)

// tagTimeout bounds how long an accepted connection may take to send its tag.
const tagTimeout = 5 * time.Second

// acceptBacklog is the capacity of each sub-listener's queue.
const acceptBacklog = 64

// ErrClosed is returned by Accept after the Mux is closed.
var ErrClosed = net.ErrClosed

// Mux demultiplexes one listener by tag byte.
type Mux struct {
	ln        net.Listener
	advertise net.Addr
	logger    *slog.Logger

	// dialFrom is the local address outgoing connections bind to (nil =
	// the kernel's choice); see New.
	dialFrom *net.TCPAddr

	// wrap, when set, wraps every routed and dialed connection after its tag
	// byte (e.g. to count the port's traffic); see SetConnWrapper.
	wrap func(net.Conn) net.Conn

	// tlsServer and tlsClient, when set, put mutual TLS on every accepted
	// and dialed connection before the tag byte; see SetTLS.
	tlsServer *tls.Config
	tlsClient func(addr string) (*tls.Config, error)

	mu     sync.Mutex
	subs   map[byte]*Listener
	closed chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

// New wraps ln. advertise is the address peers use to reach this listener
// (it may differ from ln.Addr() when binding 0.0.0.0); nil means ln.Addr().
func New(ln net.Listener, advertise net.Addr, logger *slog.Logger) *Mux {
	if advertise == nil {
		advertise = ln.Addr()
	}
	m := &Mux{ln: ln, advertise: advertise, logger: logger, subs: map[byte]*Listener{}, closed: make(chan struct{})}
	// A node listening on a specific loopback address (127.0.0.2, ...)
	// also dials its peers from it, so a peer (or a fault-injecting proxy
	// in a test) sees which node a connection comes from. Peers of a
	// loopback listener are on the same host, so the source is always
	// routable; other addresses keep the kernel's choice.
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && ta.IP.IsLoopback() && !ta.IP.Equal(net.IPv4(127, 0, 0, 1)) && !ta.IP.Equal(net.IPv6loopback) {
		m.dialFrom = &net.TCPAddr{IP: ta.IP}
	}
	return m
}

// SetConnWrapper makes the mux pass every connection it routes or dials
// through w once the tag byte is exchanged (so the wrapper never sees the
// tag). Call it before Serve and the first Dial; it is not synchronised.
func (m *Mux) SetConnWrapper(w func(net.Conn) net.Conn) { m.wrap = w }

// SetTLS puts TLS on the port: every accepted connection completes a
// handshake with server (which should require a client certificate)
// before its tag byte is read, bounded by the tag timeout, in the
// connection's own goroutine; a connection whose handshake fails is
// logged with its remote address and closed before anything it sent is
// read. Dial uses client(addr) for every outgoing connection. Call it
// before Serve and the first Dial; it is not synchronised.
func (m *Mux) SetTLS(server *tls.Config, client func(addr string) (*tls.Config, error)) {
	m.tlsServer, m.tlsClient = server, client
}

// Dial connects to addr and writes tag, from this mux's dial address
// (over TLS when SetTLS was called).
func (m *Mux) Dial(ctx context.Context, addr string, tag byte) (net.Conn, error) {
	var d net.Dialer
	if m.dialFrom != nil {
		d.LocalAddr = m.dialFrom
	}
	var cfg *tls.Config
	if m.tlsClient != nil {
		var err error
		if cfg, err = m.tlsClient(addr); err != nil {
			return nil, err
		}
	}
	c, err := dial(ctx, d, addr, tag, cfg)
	if err != nil || m.wrap == nil {
		return c, err
	}
	return m.wrap(c), nil
}

// Listener returns the sub-listener for tag, creating it on first use.
func (m *Mux) Listener(tag byte) *Listener {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.subs[tag]; ok {
		return l
	}
	l := &Listener{mux: m, tag: tag, conns: make(chan net.Conn, acceptBacklog)}
	m.subs[tag] = l
	return l
}

// Addr is the advertised address.
func (m *Mux) Addr() net.Addr { return m.advertise }

// Serve accepts connections until ctx is cancelled or Close is called. It
// returns nil after a Close.
func (m *Mux) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = m.Close() })
	defer stop()
	defer m.wg.Wait()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("mux: accept: %w", err)
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.route(c)
		}()
	}
}

func (m *Mux) route(c net.Conn) {
	var tag [1]byte
	// One deadline bounds the handshake and the tag: a peer that stalls
	// costs this goroutine tagTimeout, never the accept loop.
	_ = c.SetDeadline(time.Now().Add(tagTimeout))
	if m.tlsServer != nil {
		tc := tls.Server(c, m.tlsServer)
		if err := tc.Handshake(); err != nil {
			m.logger.Warn("mux: peer connection refused: TLS handshake failed (is its certificate from the cluster CA, with client and server auth usages?)",
				"remote", c.RemoteAddr().String(), "err", err)
			_ = c.Close()
			return
		}
		c = tc
	}
	if _, err := c.Read(tag[:]); err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	m.mu.Lock()
	l, ok := m.subs[tag[0]]
	m.mu.Unlock()
	if !ok {
		m.logger.Warn("mux: connection with unknown tag closed", "tag", tag[0], "remote", c.RemoteAddr().String())
		_ = c.Close()
		return
	}
	if m.wrap != nil {
		c = m.wrap(c)
	}
	select {
	case l.conns <- c:
	case <-m.closed:
		_ = c.Close()
	}
}

// Close closes the base listener and every sub-listener. Idempotent.
func (m *Mux) Close() error {
	var err error
	m.once.Do(func() {
		close(m.closed)
		err = m.ln.Close()
	})
	return err
}

// Listener is one protocol's view of the Mux. It implements net.Listener.
type Listener struct {
	mux   *Mux
	tag   byte
	conns chan net.Conn
}

// Accept waits for the next connection carrying this listener's tag.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.mux.closed:
		return nil, ErrClosed
	}
}

// Close closes the whole Mux (sub-listeners share its lifetime).
func (l *Listener) Close() error { return l.mux.Close() }

// Addr is the Mux's advertised address.
func (l *Listener) Addr() net.Addr { return l.mux.advertise }

// Dial connects to addr and writes tag.
func Dial(ctx context.Context, addr string, tag byte) (net.Conn, error) {
	return dial(ctx, net.Dialer{}, addr, tag, nil)
}

// DialTLS connects to addr over TLS with cfg (whose ServerName must name
// the peer) and writes tag.
func DialTLS(ctx context.Context, addr string, tag byte, cfg *tls.Config) (net.Conn, error) {
	return dial(ctx, net.Dialer{}, addr, tag, cfg)
}

func dial(ctx context.Context, d net.Dialer, addr string, tag byte, cfg *tls.Config) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if cfg != nil {
		hctx, cancel := context.WithTimeout(ctx, tagTimeout)
		tc := tls.Client(c, cfg)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("mux: TLS handshake with %s: %w", addr, err)
		}
		c = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(dl)
	}
	if _, err := c.Write([]byte{tag}); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("mux: write tag to %s: %w", addr, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// RaftLayer adapts the TagRaft sub-listener to raft.StreamLayer.
type RaftLayer struct {
	*Listener
}

var _ raft.StreamLayer = RaftLayer{}

// NewRaftLayer returns the raft stream layer of m.
func NewRaftLayer(m *Mux) RaftLayer { return RaftLayer{Listener: m.Listener(TagRaft)} }

// Dial implements raft.StreamLayer.
func (r RaftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return r.mux.Dial(ctx, string(address), TagRaft)
}
