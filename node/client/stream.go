package client

import (
	"context"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
)

// Send buffers req for sending without waiting for its reply; replies are
// read with Recv, in the order the requests were sent. Nothing reaches the
// network until the buffer fills or Flush is called, so a burst of Sends
// followed by one Flush becomes one write. Send allocates nothing.
//
// Send and Flush may be called from one goroutine while another calls
// Recv. Do not call synchronous methods while replies are outstanding.
// Bound what is in flight (a window, as the load generator keeps): one
// goroutine that sends megabytes without receiving can stall against the
// server, which stops reading while its replies go unread.
//
// req is checked with protocol.ValidateRequest; an invalid one is returned
// as a *protocol.RequestError, is not sent and leaves the Client usable.
func (c *Client) Send(req protocol.Request) error {
	if err := c.brokenErr(); err != nil {
		return err
	}
	if err := protocol.ValidateRequest(req); err != nil {
		return err
	}
	// The request is encoded straight into the writer's spare buffer; if it
	// does not fit, bufio flushes and copies as usual.
	buf := protocol.AppendRequestFrame(c.bw.AvailableBuffer(), req)
	if c.timeout > 0 && len(buf) > c.bw.Available() {
		// This write will reach the socket; bound it.
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	}
	// Count before writing: a full buffer flushes inside Write, and a
	// concurrent Recv may see the reply before Write returns.
	c.pendMu.Lock()
	c.pending++
	c.pendMu.Unlock()
	if _, err := c.bw.Write(buf); err != nil {
		return c.connErr("write", err)
	}
	return nil
}

// Flush writes every buffered request to the network.
func (c *Client) Flush() error {
	if err := c.brokenErr(); err != nil {
		return err
	}
	if c.bw.Buffered() == 0 {
		return nil
	}
	if c.timeout > 0 {
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	}
	if err := c.bw.Flush(); err != nil {
		return c.connErr("write", err)
	}
	return nil
}

// Pending is the number of requests sent with Send whose replies have not
// been received yet.
func (c *Client) Pending() int { return c.pendingCount() }

func (c *Client) pendingCount() int {
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	return c.pending
}

// Recv returns the reply to the oldest outstanding Send. It does not check
// that a request is outstanding (a receiving goroutine may legitimately run
// ahead of the sending one); with none, it waits until ctx or the timeout
// ends. An ERR reply is a
// normal result here (Kind protocol.ReplyErr), not an error; err reports a
// connection failure, after which the Client is broken. ctx (or the default
// timeout) bounds the wait; when the reply is already buffered Recv makes
// no system call at all. Callers must Flush before waiting on a reply
// whose request may still be buffered.
func (c *Client) Recv(ctx context.Context) (protocol.Reply, error) {
	if err := c.brokenErr(); err != nil {
		return protocol.Reply{}, err
	}
	if !protocol.FrameBuffered(c.br) {
		if err := ctx.Err(); err != nil {
			return protocol.Reply{}, err
		}
		deadline, ok := ctx.Deadline()
		if !ok && c.timeout > 0 {
			deadline = time.Now().Add(c.timeout)
		}
		_ = c.conn.SetReadDeadline(deadline)
		if ctx.Done() != nil {
			stop := context.AfterFunc(ctx, func() { _ = c.conn.SetReadDeadline(time.Unix(1, 0)) })
			defer stop()
		}
	}
	r, err := c.readReply()
	if err != nil {
		return protocol.Reply{}, c.ioErr(ctx, "read", err)
	}
	c.pendMu.Lock()
	c.pending--
	c.pendMu.Unlock()
	return r, nil
}
