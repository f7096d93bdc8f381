package ksasl

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/auth"
)

// The API keys a connection may send before it authenticated.
const (
	apiVersionsKey  int16 = 18
	HandshakeKey    int16 = 17
	AuthenticateKey int16 = 36
	// Timeout bounds a connection's time from accept to a completed
	// authentication; MaxRequestBytes bounds each request before it.
	Timeout         = 30 * time.Second
	MaxRequestBytes = 16 << 10
)

// ErrUnauthenticated closes a connection that sent a request other than
// ApiVersions or SASL before authenticating.
var ErrUnauthenticated = errors.New("kafka request before SASL authentication")

// Conn is one connection's authentication.
type Conn struct {
	sasl      *Session // nil: no users configured
	onFail    func(reason string)
	principal string    // "" until authenticated (or always, without users)
	deadline  time.Time // authentication must complete by then
	closing   bool      // close after this response
	raw       bool      // after a v0 SaslHandshake: raw tokens until done
}

// NewConn starts a connection's authentication; users nil: none needed.
func NewConn(users Users, logger *slog.Logger, onFail func(reason string)) *Conn {
	c := &Conn{deadline: time.Now().Add(Timeout), onFail: onFail}
	if users != nil {
		c.sasl = NewSession(users, logger, onFail)
	}
	return c
}

// CheckCert makes the subject CommonName of a verified TLS client
// certificate (tls.client_ca_file) the principal, as on the client port;
// call it once the handshake is done (after the first read).
// It also decides whether PLAIN may be used: over TLS, or on a loopback
// connection only.
func (c *Conn) CheckCert(nc net.Conn) {
	tc, isTLS := nc.(interface{ ConnectionState() tls.ConnectionState })
	if isTLS && c.principal == "" {
		c.principal = auth.CertPrincipal(tc.ConnectionState())
	}
	if c.sasl != nil {
		c.sasl.plainOK = isTLS || loopback(nc.LocalAddr())
	}
}

func loopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// Pending reports that the connection must still authenticate.
func (c *Conn) Pending() bool { return c.sasl != nil && c.principal == "" }

// Deadline is when a pending authentication times out.
func (c *Conn) Deadline() time.Time { return c.deadline }

// Principal is the connection's principal, "" for none yet.
func (c *Conn) Principal() string { return c.principal }

// Closing reports that the connection closes after the response just
// made (a failed authentication).
func (c *Conn) Closing() bool { return c.closing }

// Allow refuses every API but ApiVersions and SASL before authentication
// (the connection closes, as Kafka's does); it counts a "missing"
// authentication.
func (c *Conn) Allow(key int16) error {
	if !c.Pending() || key == apiVersionsKey || key == HandshakeKey || key == AuthenticateKey {
		return nil
	}
	if c.onFail != nil {
		c.onFail(auth.ReasonMissing)
	}
	return fmt.Errorf("%w: %s", ErrUnauthenticated, kmsg.NameForKey(key))
}

// ErrNoUsers: SASL on a connection of a listener without users.
var ErrNoUsers = errors.New("SASL without users configured")

// Handshake answers SaslHandshake (Session.Handshake).
func (c *Conn) Handshake(req *kmsg.SASLHandshakeRequest) (*kmsg.SASLHandshakeResponse, error) {
	if c == nil || c.sasl == nil {
		return nil, ErrNoUsers
	}
	resp, closing := c.sasl.Handshake(req)
	c.closing = closing
	c.raw = req.Version == 0 && !closing
	return resp, nil
}

// Raw reports that the next request is a raw SASL token: a v0
// SaslHandshake was answered and the exchange is not done. Kafka frames
// such tokens with a size only (no request header), and so are the
// answers.
func (c *Conn) Raw() bool { return c.raw }

// RawToken answers one raw token. An error (wrapping
// auth.ErrAuthFailed) closes the connection without an answer, as
// Kafka's legacy path does.
func (c *Conn) RawToken(token []byte) ([]byte, error) {
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.SASLAuthBytes = token
	resp, err := c.Authenticate(req)
	if err == nil && resp.ErrorCode != 0 {
		err = fmt.Errorf("%w: raw SASL token refused", auth.ErrAuthFailed)
	}
	if err != nil || c.sasl.Principal() != "" {
		c.raw = false
	}
	if err != nil {
		return nil, err
	}
	return resp.SASLAuthBytes, nil
}

// Authenticate answers SaslAuthenticate (Session.Authenticate); success
// makes the user the principal (in place of a certificate's).
func (c *Conn) Authenticate(req *kmsg.SASLAuthenticateRequest) (*kmsg.SASLAuthenticateResponse, error) {
	if c == nil || c.sasl == nil {
		return nil, ErrNoUsers
	}
	resp, closing := c.sasl.Authenticate(req)
	c.closing = closing
	if p := c.sasl.Principal(); p != "" {
		c.principal = p
	}
	return resp, nil
}
