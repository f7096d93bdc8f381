package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
)

// DefaultTimeout bounds dialing and each request when Options.Timeout is 0
// and the ctx has no deadline of its own.
const DefaultTimeout = 10 * time.Second

// bufferBytes is the size of the read and write buffers: big enough that a
// burst of 64 pipelined 100-byte PUTs, or their replies, moves in one
// syscall.
const bufferBytes = 64 << 10

// Options configure a Client. The zero value is usable.
type Options struct {
	// Timeout bounds dialing and, when the ctx of a call has no deadline,
	// each call. 0 means DefaultTimeout; a negative value means no limit.
	Timeout time.Duration
	// MaxFrameBytes is the largest reply accepted; 0 means
	// protocol.DefaultMaxFrameBytes.
	MaxFrameBytes int
	// User and Password, when User is set, authenticate every connection
	// Dial opens (and every redial) with AUTH before any request. Never
	// logged.
	User, Password string
	// TLS, when set, makes Dial (and every redial) speak TLS with it. An
	// empty ServerName is filled with the host of the dialed address, so
	// the node's certificate must name that host (DNS or IP SAN).
	TLS *tls.Config
}

func (o Options) timeout() time.Duration {
	switch {
	case o.Timeout == 0:
		return DefaultTimeout
	case o.Timeout < 0:
		return 0
	}
	return o.Timeout
}

// Client is one connection to a node. See the package documentation for
// its concurrency contract.
type Client struct {
	addr    string
	timeout time.Duration
	max     int
	// redial opens a replacement connection; nil for NewConn clients.
	redial func(ctx context.Context) (net.Conn, error)

	connMu sync.Mutex // guards conn against Close while a call swaps it
	conn   net.Conn
	closed bool

	lastUsed time.Time // end of the last synchronous exchange; guarded by mu

	mu      sync.Mutex // held for a whole synchronous exchange
	br      *bufio.Reader
	bw      *bufio.Writer
	pending int // requests sent (Send) and not yet received (Recv); guarded by pendMu
	pendMu  sync.Mutex

	errMu  sync.Mutex
	broken error // sticky; set when the stream can no longer be trusted

	closeOnce sync.Once
}

// Dial connects to addr ("host:port").
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	timeout := opts.timeout()
	d := net.Dialer{Timeout: timeout}
	dial := func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	if opts.TLS != nil {
		cfg := opts.TLS
		if cfg.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, &ConnError{Addr: addr, Op: "dial", Err: err}
			}
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		td := tls.Dialer{NetDialer: &d, Config: cfg}
		dial = func(ctx context.Context) (net.Conn, error) { return td.DialContext(ctx, "tcp", addr) }
	}
	redial := func(ctx context.Context) (net.Conn, error) {
		conn, err := dial(ctx)
		if err != nil || opts.User == "" {
			return conn, err
		}
		if err := authenticate(ctx, conn, addr, opts); err != nil {
			_ = conn.Close()
			return nil, err
		}
		return conn, nil
	}
	conn, err := redial(ctx)
	if err != nil {
		var ae *AuthError
		if errors.As(err, &ae) {
			return nil, err
		}
		return nil, &ConnError{Addr: addr, Op: "dial", Err: err}
	}
	c := NewConn(conn, addr, opts)
	c.redial = redial
	return c, nil
}

// NewConn wraps an established connection (for tests and custom dialers).
// addr is only used in error messages.
func NewConn(conn net.Conn, addr string, opts Options) *Client {
	maxBytes := opts.MaxFrameBytes
	if maxBytes <= 0 {
		maxBytes = protocol.DefaultMaxFrameBytes
	}
	return &Client{
		addr:     addr,
		conn:     conn,
		timeout:  opts.timeout(),
		max:      maxBytes,
		br:       bufio.NewReaderSize(conn, bufferBytes),
		bw:       bufio.NewWriterSize(conn, bufferBytes),
		lastUsed: time.Now(),
	}
}

// Addr is the address the Client was dialled with.
func (c *Client) Addr() string { return c.addr }

// Close closes the connection. It is idempotent; calls in progress fail.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.setBroken(ErrClosed)
		c.connMu.Lock()
		c.closed = true
		conn := c.conn
		c.connMu.Unlock()
		err = conn.Close()
	})
	return err
}

func (c *Client) brokenErr() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.broken
}

// setBroken records the first fatal error and returns the error callers see.
func (c *Client) setBroken(err error) error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.broken == nil {
		c.broken = err
	}
	return c.broken
}

func (c *Client) connErr(op string, err error) error {
	if errors.Is(err, ErrClosed) {
		return err
	}
	var ce *ConnError
	if !errors.As(err, &ce) {
		err = &ConnError{Addr: c.addr, Op: op, Err: err}
	}
	return c.setBroken(err)
}

// arm applies ctx's deadline (or the default timeout) to the connection and
// arranges for a cancelled ctx to interrupt blocked I/O. The returned stop
// must be called when the exchange ends.
func (c *Client) arm(ctx context.Context) (stop func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	deadline, ok := ctx.Deadline()
	if !ok && c.timeout > 0 {
		deadline = time.Now().Add(c.timeout)
	}
	conn := c.conn
	if err := conn.SetDeadline(deadline); err != nil { // zero deadline = none
		return nil, c.connErr("set deadline", err)
	}
	if ctx.Done() == nil {
		return func() {}, nil
	}
	// Waking a blocked read is the only way to honour cancellation on a
	// net.Conn; the stream is then broken, which the read error reports.
	unhook := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return func() { unhook() }, nil
}

// ioErr converts an I/O failure during an exchange, preferring the ctx's
// own error when it was the cause.
func (c *Client) ioErr(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		err = fmt.Errorf("%w (%v)", cerr, err)
	}
	return c.connErr(op, err)
}

// Do sends one request and waits for its reply. An ERR reply is returned
// both as the Reply and as a *ServerError.
//
// req is checked with protocol.ValidateRequest first; an invalid request
// returns its *protocol.RequestError and is not sent.
func (c *Client) Do(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	if err := protocol.ValidateRequest(req); err != nil {
		return protocol.Reply{}, err
	}
	replies, err := c.exchange(ctx, func(buf []byte) []byte { return protocol.AppendRequestFrame(buf, req) }, 1, nil)
	if err != nil {
		return protocol.Reply{}, err
	}
	return replies[0], replyErr(replies[0])
}

// DoLine sends line as one frame, exactly as typed (no parsing, no
// trimming), and waits for the reply. ERR replies are also returned as a
// *ServerError.
func (c *Client) DoLine(ctx context.Context, line string) (protocol.Reply, error) {
	if line == "" {
		return protocol.Reply{}, fmt.Errorf("walrus %s: empty request: %w", c.addr, protocol.ErrFrameLength)
	}
	if len(line) > c.max {
		return protocol.Reply{}, fmt.Errorf("walrus %s: request of %d bytes is over the %d-byte frame limit: %w", c.addr, len(line), c.max, protocol.ErrFrameLength)
	}
	replies, err := c.exchange(ctx, func(buf []byte) []byte { return protocol.AppendFrame(buf, []byte(line)) }, 1, nil)
	if err != nil {
		return protocol.Reply{}, err
	}
	return replies[0], replyErr(replies[0])
}

// Pipeline sends all reqs in one write and returns their replies in order.
// ERR replies are left in the slice (Kind protocol.ReplyErr); err is only
// for failures of the connection itself.
//
// Every request is checked with protocol.ValidateRequest before anything is
// sent; the first invalid one is returned as a *protocol.RequestError.
func (c *Client) Pipeline(ctx context.Context, reqs []protocol.Request) ([]protocol.Reply, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	for i, r := range reqs {
		if err := protocol.ValidateRequest(r); err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
	}
	return c.exchange(ctx, func(buf []byte) []byte {
		for _, r := range reqs {
			buf = protocol.AppendRequestFrame(buf, r)
		}
		return buf
	}, len(reqs), make([]protocol.Reply, 0, len(reqs)))
}

func replyErr(r protocol.Reply) error {
	if r.Kind == protocol.ReplyErr {
		return &ServerError{Message: string(r.Body)}
	}
	return nil
}

// exchange writes what encode appends, flushes once, and reads n replies.
func (c *Client) exchange(ctx context.Context, encode func([]byte) []byte, n int, out []protocol.Reply) ([]protocol.Reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.brokenErr(); err != nil {
		return nil, err
	}
	if c.pendingCount() != 0 {
		return nil, fmt.Errorf("walrus %s: synchronous call while %d streamed requests are outstanding", c.addr, c.pendingCount())
	}
	if err := c.reconnectIfStale(ctx); err != nil {
		return nil, err
	}
	stop, err := c.arm(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	buf := encode(c.bw.AvailableBuffer())
	if out == nil {
		out = make([]protocol.Reply, 0, n)
	}
	if len(buf) > bufferBytes {
		return c.exchangeLarge(ctx, buf, n, out)
	}
	if _, err := c.bw.Write(buf); err != nil {
		return nil, c.ioErr(ctx, "write", err)
	}
	if err := c.bw.Flush(); err != nil {
		return nil, c.ioErr(ctx, "write", err)
	}
	for range n {
		r, err := c.readReply()
		if err != nil {
			return nil, c.ioErr(ctx, "read", err)
		}
		out = append(out, r)
	}
	c.lastUsed = time.Now()
	return out, nil
}

// exchangeLarge writes a big request burst on a helper goroutine while the
// caller reads replies. Writing it all before reading could deadlock: the
// server stops reading once its replies fill our unread receive buffer,
// and then our write never finishes. The write buffer is empty here (no
// streamed requests are outstanding), so writing to the conn directly
// keeps the byte order.
func (c *Client) exchangeLarge(ctx context.Context, buf []byte, n int, out []protocol.Reply) ([]protocol.Reply, error) {
	conn := c.conn
	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(buf)
		werr <- err
	}()
	var rerr error
	for range n {
		r, err := c.readReply()
		if err != nil {
			rerr = err
			// Unblock the writer; the stream is unusable anyway.
			_ = conn.Close()
			break
		}
		out = append(out, r)
	}
	if err := <-werr; err != nil && rerr == nil {
		return nil, c.ioErr(ctx, "write", err)
	}
	if rerr != nil {
		return nil, c.ioErr(ctx, "read", rerr)
	}
	c.lastUsed = time.Now()
	return out, nil
}

// staleAfter is how long a connection must have been unused before a
// synchronous call checks whether the server has closed it meanwhile.
const staleAfter = 200 * time.Millisecond

// reconnectIfStale replaces a connection the server closed while it was
// idle (idle timeout, node restart), so that an interactive shell or a
// poller does not fail once per server-side close. It is safe because
// nothing is outstanding: the request about to be sent has not reached the
// old connection. Called with mu held.
func (c *Client) reconnectIfStale(ctx context.Context) error {
	if c.redial == nil || c.br.Buffered() != 0 || c.bw.Buffered() != 0 ||
		time.Since(c.lastUsed) < staleAfter || !connClosed(c.conn) {
		return nil
	}
	conn, err := c.redial(ctx)
	if err != nil {
		return c.connErr("dial", err)
	}
	c.connMu.Lock()
	if c.closed {
		c.connMu.Unlock()
		_ = conn.Close()
		return ErrClosed
	}
	old := c.conn
	c.conn = conn
	c.connMu.Unlock()
	_ = old.Close()
	c.br.Reset(conn)
	c.bw.Reset(conn)
	return nil
}

// Canonical replies returned without allocating.
var (
	okFrame    = []byte("OK")
	emptyFrame = []byte("EMPTY")
)

// readReply reads one reply frame. The bare OK and EMPTY replies, which
// dominate a produce load, are recognised in the read buffer and cost no
// allocation; every other reply owns a fresh copy of its bytes.
func (c *Client) readReply() (protocol.Reply, error) {
	if hdr, err := c.br.Peek(protocol.HeaderBytes); err == nil {
		n := int(binary.LittleEndian.Uint32(hdr))
		if n == len(okFrame) || n == len(emptyFrame) {
			if b, err := c.br.Peek(protocol.HeaderBytes + n); err == nil {
				body := b[protocol.HeaderBytes:]
				var r protocol.Reply
				switch {
				case string(body) == "OK":
					r = protocol.OK()
				case string(body) == "EMPTY":
					r = protocol.Empty()
				}
				if r.Kind != 0 {
					_, _ = c.br.Discard(protocol.HeaderBytes + n)
					return r, nil
				}
			}
		}
	}
	frame, err := protocol.ReadFrame(c.br, c.max)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("connection closed by server: %w", io.ErrUnexpectedEOF)
		}
		return protocol.Reply{}, err
	}
	return protocol.ParseReply(frame), nil
}

// Register creates topic if it does not exist (idempotent).
func (c *Client) Register(ctx context.Context, topic string) error {
	return c.expectOK(ctx, protocol.Request{Command: protocol.CmdRegister, Topic: topic})
}

// Put appends payload to topic. payload must not be empty.
func (c *Client) Put(ctx context.Context, topic string, payload []byte) error {
	return c.expectOK(ctx, protocol.Request{Command: protocol.CmdPut, Topic: topic, Payload: payload})
}

func (c *Client) expectOK(ctx context.Context, req protocol.Request) error {
	r, err := c.Do(ctx, req)
	if err != nil {
		return err
	}
	if r.Kind != protocol.ReplyOK {
		return fmt.Errorf("walrus %s: %s: got %q: %w", c.addr, req.Command, truncate(r.Encode()), ErrUnexpectedReply)
	}
	return nil
}

// Get reads the next entry of topic through its shared cursor. ok is false
// when the topic has nothing more to read (EMPTY).
func (c *Client) Get(ctx context.Context, topic string) (payload []byte, ok bool, err error) {
	r, err := c.Do(ctx, protocol.Request{Command: protocol.CmdGet, Topic: topic})
	if err != nil {
		return nil, false, err
	}
	switch r.Kind {
	case protocol.ReplyPayload:
		return r.Body, true, nil
	case protocol.ReplyEmpty:
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("walrus %s: GET: got %q: %w", c.addr, truncate(r.Encode()), ErrUnexpectedReply)
}

func truncate(b []byte) string {
	const limit = 200
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
