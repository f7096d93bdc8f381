package server

import (
	"context"
	"crypto/tls"
	"errors"
	"time"

	"github.com/walrus-go/walrus/node/auth"
	"github.com/walrus-go/walrus/node/protocol"
)

// CmdAuth ("AUTH <user> <password>") authenticates the connection.
const CmdAuth = "AUTH"

// handshakeTimeout bounds the TLS handshake of a new connection.
const handshakeTimeout = 10 * time.Second

// tlsConn is what a *tls.Conn offers (an interface so a wrapped TLS
// connection qualifies too).
type tlsConn interface {
	HandshakeContext(ctx context.Context) error
	ConnectionState() tls.ConnectionState
}

// tlsIdentity completes the TLS handshake of a TLS connection and, when it
// verified a client certificate, makes the certificate's subject
// CommonName the connection's principal. It returns false when the
// handshake failed: the connection is dropped without a reply.
func (c *connState) tlsIdentity() bool {
	tc, ok := c.conn.(tlsConn)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.log.Debug("client TLS handshake failed", "err", err)
		return false
	}
	if p := auth.CertPrincipal(tc.ConnectionState()); p != "" {
		c.setPrincipal(p)
		c.log.Debug("client authenticated by certificate", "principal", p)
	}
	return true
}

func (c *connState) setPrincipal(p string) {
	c.authed = true
	c.hctx = auth.WithPrincipal(c.s.ctx, p)
}

func (c *connState) authRequired() bool { return c.s.cfg.Auth.Enabled() && !c.authed }

// handleBatch answers the batch: AUTH commands here, requests before
// authentication with "ERR authentication required", and every run of
// other requests through the Handler with the principal in force at its
// position. It returns true when the connection must close (too many
// failed AUTHs); the requests after that point are not executed.
func (c *connState) handleBatch() (closeAfter bool) {
	from := 0
	for i := range c.items {
		it := &c.items[i]
		if it.answered {
			continue
		}
		if closeAfter {
			it.reply, it.answered = protocol.Errf("connection closed after too many failed AUTH attempts"), true
			continue
		}
		if it.req.Command != CmdAuth && !c.authRequired() {
			continue // part of the current run
		}
		c.handleRun(from, i)
		from = i + 1
		it.answered = true
		if it.req.Command != CmdAuth {
			c.authFailed(auth.ReasonMissing, "")
			it.reply = protocol.Errf("authentication required: send AUTH <user> <password> first")
			continue
		}
		it.reply, closeAfter = c.authenticate(it.req)
	}
	c.handleRun(from, len(c.items))
	return closeAfter
}

// authenticate runs one AUTH. A failure leaves the connection's principal
// as it was; the MaxAuthFailures-th failure closes the connection.
func (c *connState) authenticate(req protocol.Request) (reply protocol.Reply, closeAfter bool) {
	if !c.s.cfg.Auth.Enabled() {
		return protocol.Errf("authentication is not enabled on this node (no users configured); connect without --user"), false
	}
	if len(req.Args) != 2 {
		c.failures++
		c.authFailed(auth.ReasonMalformed, "")
		return protocol.Errf("usage: AUTH <user> <password>"), c.failures >= c.s.cfg.MaxAuthFailures
	}
	user, password := req.Args[0], req.Args[1]
	err := c.s.cfg.Auth.Authenticate(user, password)
	if err == nil {
		c.setPrincipal(user)
		c.log.Debug("client authenticated", "user", user)
		return protocol.OK(), false
	}
	c.failures++
	reason := auth.ReasonBadPassword
	var f *auth.Failure
	if errors.As(err, &f) {
		reason = f.Reason
	}
	c.authFailed(reason, user)
	if c.failures >= c.s.cfg.MaxAuthFailures {
		c.log.Warn("closing client connection after repeated authentication failures", "failures", c.failures)
		return protocol.Errf("authentication failed; closing the connection after %d failures", c.failures), true
	}
	return protocol.Errf("authentication failed: check the user name and password"), false
}

// authFailed counts and logs one failure: the remote address (in c.log),
// the user name and the reason; never the password.
func (c *connState) authFailed(reason, user string) {
	if f := c.s.cfg.OnAuthFailure; f != nil {
		f(reason)
	}
	if reason == auth.ReasonMissing {
		c.log.Debug("client request before authentication refused")
		return
	}
	c.log.Warn("client authentication failed", "user", user, "reason", reason)
}
