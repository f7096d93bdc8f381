package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
)

// item is one request of a batch: either a parsed request (handled) or an
// answer already known from parsing (an ERR).
type item struct {
	req      protocol.Request
	answered bool
	reply    protocol.Reply
}

// connState is everything one connection goroutine owns.
type connState struct {
	s    *Server
	conn net.Conn
	log  *slog.Logger
	br   *bufio.Reader
	bw   *bufio.Writer

	items   []item
	reqs    []protocol.Request
	idleSet time.Time // when the read deadline was last pushed forward

	hctx     context.Context // the Handle context: s.ctx with the principal
	authed   bool            // AUTH succeeded or a client certificate was verified
	failures int             // failed AUTH commands on this connection
}

func newConnState(s *Server, conn net.Conn) *connState {
	return &connState{
		s:    s,
		conn: conn,
		log:  s.log.With("remote", conn.RemoteAddr().String()),
		// The read buffer is where pipelined requests wait to be batched;
		// FrameBuffered sees only what fits in it.
		br:    bufio.NewReaderSize(conn, bufferBytes),
		bw:    bufio.NewWriterSize(conn, bufferBytes),
		items: make([]item, 0, 16),
		reqs:  make([]protocol.Request, 0, 16),
		hctx:  s.ctx,
	}
}

// serve runs the read → handle → write loop until the client goes away,
// the stream breaks or the server closes.
func (c *connState) serve() {
	c.log.Debug("client connected")
	if !c.tlsIdentity() {
		return
	}
	for {
		closeAfter, err := c.readBatch()
		if len(c.items) > 0 {
			if c.handleBatch() {
				err, closeAfter = nil, true
			}
			if werr := c.writeBatch(); werr != nil {
				c.logEnd(werr)
				return
			}
		}
		if err != nil {
			c.logEnd(err)
			return
		}
		if closeAfter {
			c.lingeringClose()
			return
		}
	}
}

// lingerBytes and lingerTime bound how much unread input lingeringClose
// discards, and for how long, before the connection is closed anyway.
const (
	lingerBytes = 1 << 20
	lingerTime  = 500 * time.Millisecond
)

// lingeringClose is used when the server hangs up after an error reply.
// Closing a TCP socket that still has unread input makes the kernel send a
// reset, which can destroy the error reply before the client reads it. So
// send FIN first, then discard what the client is still sending for a
// moment (net/http does the same), and only then close.
func (c *connState) lingeringClose() {
	cw, ok := c.conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, c.br, lingerBytes)
}

// readBatch blocks for one frame, then takes every further frame already
// buffered, up to MaxBatch frames or MaxBatchBytes. A bad length prefix ends the batch with
// closeAfter set (its ERR queued last); a read error ends it with err (the
// connection is gone). Requests before either are still answered.
func (c *connState) readBatch() (closeAfter bool, err error) {
	c.items = c.items[:0]
	batchBytes := 0
	for len(c.items) < c.s.cfg.MaxBatch && batchBytes < c.s.cfg.MaxBatchBytes {
		if len(c.items) > 0 && !protocol.FrameBuffered(c.br) {
			return false, nil // answer what we have before blocking again
		}
		if len(c.items) == 0 {
			c.armIdle()
		}
		frame, err := protocol.ReadFrame(c.br, c.s.cfg.MaxFrameBytes)
		if err != nil {
			var fe *protocol.FrameLengthError
			if errors.As(err, &fe) {
				c.log.Debug("bad frame length", "length", fe.Length, "max", fe.Max)
				// DESIGN.md §5: answer, then close. Even a zero length,
				// after which the bytes are still aligned, means the peer
				// is confused about framing; going on would only turn
				// its next mistake into garbage requests.
				c.answer(protocol.Errf("invalid frame length"))
				return true, nil
			}
			return false, err
		}
		batchBytes += len(frame)
		req, perr := protocol.ParseRequest(frame)
		if perr != nil {
			c.answer(protocol.ErrReply(perr))
			continue
		}
		c.items = append(c.items, item{req: req})
	}
	return false, nil
}

func (c *connState) answer(r protocol.Reply) {
	c.items = append(c.items, item{answered: true, reply: r})
}

// armIdle pushes the read deadline forward before a blocking read. Doing
// it at most every 1/8 of the timeout keeps a busy pipelined connection
// from paying for a timer update per batch.
func (c *connState) armIdle() {
	idle := c.s.cfg.IdleTimeout
	if idle <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(c.idleSet) < idle/8 {
		return
	}
	c.idleSet = now
	_ = c.conn.SetReadDeadline(now.Add(idle))
}

// handleRun passes the parsed, unanswered requests among items[from:to]
// to the Handler in one call and stores the replies in their items.
// Requests rejected while parsing have no effect, so answering them
// outside the Handler keeps the order intact.
func (c *connState) handleRun(from, to int) {
	c.reqs = c.reqs[:0]
	for i := from; i < to; i++ {
		if !c.items[i].answered {
			c.reqs = append(c.reqs, c.items[i].req)
		}
	}
	if len(c.reqs) == 0 {
		return
	}
	replies := c.callHandler()
	if len(replies) != len(c.reqs) {
		c.log.Error("handler returned the wrong number of replies", "requests", len(c.reqs), "replies", len(replies))
	}
	j := 0
	for i := from; i < to; i++ {
		it := &c.items[i]
		if it.answered {
			continue
		}
		if j < len(replies) {
			it.reply = replies[j]
		} else {
			it.reply = protocol.Errf("internal error")
		}
		j++
		it.answered = true
	}
	clear(c.reqs) // drop payload references so they can be collected
}

// callHandler runs the Handler, turning a panic into "ERR internal error"
// for the whole batch: which requests took effect before the panic is
// unknown, so none is reported as done.
func (c *connState) callHandler() (replies []protocol.Reply) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("client request handler panicked", "err", fmt.Sprint(p), "requests", len(c.reqs), "stack", string(debug.Stack()))
			replies = make([]protocol.Reply, len(c.reqs))
			for i := range replies {
				replies[i] = protocol.Errf("internal error")
			}
		}
	}()
	return c.s.handler.Handle(c.hctx, c.reqs)
}

// writeBatch writes every reply and flushes once.
func (c *connState) writeBatch() error {
	if wt := c.s.cfg.WriteTimeout; wt > 0 {
		_ = c.conn.SetWriteDeadline(time.Now().Add(wt))
	}
	for i := range c.items {
		r := c.items[i].reply
		if r.Kind == protocol.ReplyRaw && len(r.Body) == 0 || r.Kind < protocol.ReplyOK || r.Kind > protocol.ReplyErr {
			c.log.Error("handler returned an invalid reply", "kind", r.Kind.String())
		}
		// Encode straight into the writer's spare buffer when it fits.
		buf := protocol.AppendReplyFrame(c.bw.AvailableBuffer(), r)
		if _, err := c.bw.Write(buf); err != nil {
			return err
		}
		c.items[i] = item{}
	}
	return c.bw.Flush()
}

// logEnd records why the connection ended; none of these is a server
// fault, so they are Debug.
func (c *connState) logEnd(err error) {
	switch {
	case errors.Is(err, io.EOF):
		c.log.Debug("client disconnected")
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.log.Debug("client disconnected mid-frame")
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Debug("client connection timed out (idle or not reading)")
	case errors.Is(err, net.ErrClosed) || c.s.ctx.Err() != nil:
		c.log.Debug("client connection closed by server")
	default:
		c.log.Debug("client connection failed", "err", err)
	}
}
