package kafka

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/auth"
	"github.com/walrus-go/walrus/node/kafka/kauthz"
	"github.com/walrus-go/walrus/node/kafka/ksasl"
)

// Users is the user store (*auth.Store); with users the listener
// requires SASL (or a verified TLS client certificate).
type Users interface {
	ksasl.Users
	Enabled() bool
}

// Authorizer decides ACLs (*acl.Authorizer); kauthz maps the APIs.
type Authorizer = kauthz.Authorizer

type connKey struct{}

func (s *Server) newConn(c net.Conn) *ksasl.Conn {
	if s.deps.Users == nil || !s.deps.Users.Enabled() {
		return ksasl.NewConn(nil, nil, nil)
	}
	return ksasl.NewConn(s.deps.Users, s.deps.Logger.With("remote", c.RemoteAddr().String()), s.cfg.OnAuthFailure)
}

// authorize refuses a request before authentication and puts the
// principal in ctx.
func (s *Server) authorize(ctx context.Context, key int16) (context.Context, error) {
	cs, _ := ctx.Value(connKey{}).(*ksasl.Conn)
	if cs == nil {
		return ctx, nil
	}
	if err := cs.Allow(key); err != nil {
		return ctx, err
	}
	if p := cs.Principal(); p != "" {
		ctx = auth.WithPrincipal(ctx, p)
	}
	return ctx, nil
}

// saslAPIs are SaslHandshake v0-1 (after v0, raw tokens: serveConn) and
// SaslAuthenticate v0-2.
func saslAPIs(t map[int16]api) {
	conn := func(ctx context.Context) *ksasl.Conn {
		cs, _ := ctx.Value(connKey{}).(*ksasl.Conn)
		return cs
	}
	t[ksasl.HandshakeKey] = on(0, 1, func(ctx context.Context, r *kmsg.SASLHandshakeRequest) (*kmsg.SASLHandshakeResponse, error) {
		return conn(ctx).Handshake(r)
	})
	t[ksasl.AuthenticateKey] = on(0, 2, func(ctx context.Context, r *kmsg.SASLAuthenticateRequest) (*kmsg.SASLAuthenticateResponse, error) {
		return conn(ctx).Authenticate(r)
	})
}
