package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ErrPoolClosed: the pool was closed.
var ErrPoolClosed = errors.New("rpc: pool closed")

// ErrTimeout: an asynchronous call got no response in time.
var ErrTimeout = errors.New("rpc: call timed out")

// ErrConnLost: the connection broke before the response arrived (the
// request may or may not have been executed).
var ErrConnLost = errors.New("rpc: connection lost")

// DialFunc opens a connection to addr.
type DialFunc func(ctx context.Context, addr string) (net.Conn, error)

type result struct {
	payload []byte
	err     error
}

// pendingCall is one request waiting for its response: either a channel
// (Call) or a callback (Go).
type pendingCall struct {
	ch       chan result
	cb       func([]byte, error)
	deadline time.Time
}

func (p pendingCall) finish(r result) {
	if p.cb != nil {
		p.cb(r.payload, r.err)
		return
	}
	p.ch <- r
}

// clientConn is one pipelined connection.
type clientConn struct {
	addr string
	conn net.Conn
	w    *writer

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]pendingCall
	broken  error
	stop    chan struct{}
	wg      sync.WaitGroup
}

func (c *clientConn) readLoop(onBroken func(*clientConn)) {
	defer c.wg.Done()
	r := newReader(c.conn)
	var hdr [headerBytes]byte
	for {
		id, status, payload, err := readFrame(r, &hdr)
		if err != nil {
			c.fail(fmt.Errorf("%w: %s: %v", ErrConnLost, c.addr, err))
			onBroken(c)
			return
		}
		c.mu.Lock()
		pc, ok := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if !ok {
			continue // caller gave up (ctx done or expired)
		}
		if status == statusOK {
			pc.finish(result{payload: payload})
		} else {
			pc.finish(result{err: decodeError(payload)})
		}
	}
}

func (c *clientConn) fail(err error) {
	c.mu.Lock()
	if c.broken == nil {
		c.broken = err
	}
	p := c.pending
	c.pending = map[uint64]pendingCall{}
	c.mu.Unlock()
	for _, pc := range p {
		pc.finish(result{err: err})
	}
	_ = c.conn.Close()
}

func (c *clientConn) call(ctx context.Context, method byte, payload []byte) ([]byte, error) {
	ch := make(chan result, 1)
	c.mu.Lock()
	if c.broken != nil {
		err := c.broken
		c.mu.Unlock()
		return nil, err
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = pendingCall{ch: ch}
	c.mu.Unlock()
	if err := c.w.enqueue(id, method, payload); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %s: %v", ErrConnLost, c.addr, err)
	}
	select {
	case r := <-ch:
		return r.payload, r.err
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// goCall sends a request whose response is delivered to cb (on the
// connection's reader goroutine: cb must not block). The call fails with
// ErrTimeout if no response arrives within timeout.
func (c *clientConn) goCall(method byte, payload []byte, enc Encoder, timeout time.Duration, cb func([]byte, error)) {
	c.mu.Lock()
	if c.broken != nil {
		err := c.broken
		c.mu.Unlock()
		cb(nil, err)
		return
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = pendingCall{cb: cb, deadline: time.Now().Add(timeout)}
	c.mu.Unlock()
	if err := c.w.enqueueEnc(id, method, payload, enc); err != nil {
		c.mu.Lock()
		_, ok := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if !ok {
			return
		}
		if errors.Is(err, ErrPayloadTooLarge) {
			cb(nil, err) // refused before anything was sent
			return
		}
		cb(nil, fmt.Errorf("%w: %s: %v", ErrConnLost, c.addr, err))
	}
}

// expire fails async calls past their deadline.
func (c *clientConn) expire(now time.Time) {
	var late []pendingCall
	c.mu.Lock()
	for id, pc := range c.pending {
		if pc.cb != nil && now.After(pc.deadline) {
			late = append(late, pc)
			delete(c.pending, id)
		}
	}
	c.mu.Unlock()
	for _, pc := range late {
		pc.finish(result{err: fmt.Errorf("%w: %s", ErrTimeout, c.addr)})
	}
}

func (c *clientConn) close() {
	c.fail(fmt.Errorf("%w: %s: closed", ErrConnLost, c.addr))
	close(c.stop)
	c.wg.Wait()
}

// Pool keeps one pipelined connection per peer address.
type Pool struct {
	dial   DialFunc
	logger *slog.Logger

	mu     sync.Mutex
	conns  map[string]*clientConn
	dials  map[string]chan struct{} // in-progress dials, closed when done
	closed bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// NewPool returns a pool that opens connections with dial.
func NewPool(dial DialFunc, logger *slog.Logger) *Pool {
	p := &Pool{dial: dial, logger: logger, conns: map[string]*clientConn{}, dials: map[string]chan struct{}{}, stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.janitor()
	}()
	return p
}

// dialTimeout bounds a dial when the caller's ctx has no deadline.
const dialTimeout = 5 * time.Second

// janitorInterval is how often async calls are checked for expiry.
const janitorInterval = 250 * time.Millisecond

func (p *Pool) janitor() {
	t := time.NewTicker(janitorInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.mu.Lock()
			conns := make([]*clientConn, 0, len(p.conns))
			for _, c := range p.conns {
				conns = append(conns, c)
			}
			p.mu.Unlock()
			for _, c := range conns {
				c.expire(now)
			}
		}
	}
}

// Go sends one request to addr without waiting; cb gets the response (or
// an error) exactly once, possibly on another goroutine, and must not
// block. timeout bounds the wait for the response.
func (p *Pool) Go(ctx context.Context, addr string, method byte, payload []byte, timeout time.Duration, cb func([]byte, error)) {
	c, err := p.get(ctx, addr)
	if err != nil {
		cb(nil, err)
		return
	}
	c.goCall(method, payload, nil, timeout, cb)
}

// GoEncoded is Go with a payload that enc encodes straight into the
// connection's send buffer (it is called once, before GoEncoded returns,
// unless the call fails first).
func (p *Pool) GoEncoded(ctx context.Context, addr string, method byte, enc Encoder, timeout time.Duration, cb func([]byte, error)) {
	c, err := p.get(ctx, addr)
	if err != nil {
		cb(nil, err)
		return
	}
	c.goCall(method, nil, enc, timeout, cb)
}

// Call sends one request to addr and waits for its response (bounded by
// ctx). A remote handler error comes back as *Error.
func (p *Pool) Call(ctx context.Context, addr string, method byte, payload []byte) ([]byte, error) {
	c, err := p.get(ctx, addr)
	if err != nil {
		return nil, err
	}
	return c.call(ctx, method, payload)
}

func (p *Pool) get(ctx context.Context, addr string) (*clientConn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrPoolClosed
		}
		if c, ok := p.conns[addr]; ok {
			p.mu.Unlock()
			return c, nil
		}
		if wait, ok := p.dials[addr]; ok {
			p.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		p.dials[addr] = done
		p.mu.Unlock()

		dctx, cancel := ctx, context.CancelFunc(func() {})
		if _, ok := ctx.Deadline(); !ok {
			dctx, cancel = context.WithTimeout(ctx, dialTimeout)
		}
		conn, err := p.dial(dctx, addr)
		cancel()

		p.mu.Lock()
		delete(p.dials, addr)
		close(done)
		if err != nil {
			p.mu.Unlock()
			return nil, fmt.Errorf("rpc: dial %s: %w", addr, err)
		}
		if p.closed {
			p.mu.Unlock()
			_ = conn.Close()
			return nil, ErrPoolClosed
		}
		c := &clientConn{addr: addr, conn: conn, w: newWriter(conn), pending: map[uint64]pendingCall{}, stop: make(chan struct{})}
		p.conns[addr] = c
		c.wg.Add(2)
		go func() { defer c.wg.Done(); c.w.run(c.stop) }()
		go c.readLoop(p.drop)
		p.mu.Unlock()
		return c, nil
	}
}

// drop forgets a broken connection so the next call redials.
func (p *Pool) drop(c *clientConn) {
	p.mu.Lock()
	if p.conns[c.addr] == c {
		delete(p.conns, c.addr)
	}
	p.mu.Unlock()
}

// Close closes every connection and waits for their goroutines.
func (p *Pool) Close() error {
	p.mu.Lock()
	if !p.closed {
		close(p.stop)
	}
	p.closed = true
	conns := p.conns
	p.conns = map[string]*clientConn{}
	p.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	p.wg.Wait()
	return nil
}
