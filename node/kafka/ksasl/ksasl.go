// Package ksasl is the server side of SASL on the Kafka listener:
// SaslHandshake (v1) and SaslAuthenticate (v0-2) with the mechanisms
// SCRAM-SHA-256 (over the stored credentials of node/auth) and PLAIN (a
// password checked by auth.Store.Authenticate). One Session is one
// connection's exchange; it has no network code.
package ksasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"

	"github.com/walrus-go/walrus/node/auth"
)

// The mechanisms served. SCRAM-SHA-512 authenticates users whose
// password_hash holds a SCRAM-SHA-512 credential too (what `walrus-cli
// user hash` writes); others fail it like a wrong password.
const (
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
	Plain       = "PLAIN"
)

// Mechanisms lists the mechanisms served, as SaslHandshake answers them.
var Mechanisms = []string{ScramSHA256, ScramSHA512, Plain}

// MaxAuthBytes bounds one SaslAuthenticate token (a SCRAM message or a
// PLAIN triple is far smaller).
const MaxAuthBytes = 4096

// Users is the user store (*auth.Store).
type Users interface {
	Authenticate(user, password string) error
	Lookup(user string) (scram.StoredCredentials, error)
	Lookup512(user string) (scram.StoredCredentials, error)
}

// Errors of a session; every refusal wraps one.
var (
	// ErrIllegalState: a message out of order (SaslAuthenticate before
	// SaslHandshake, a second handshake).
	ErrIllegalState = errors.New("illegal SASL state")
	// ErrMechanism: a mechanism not served.
	ErrMechanism = errors.New("unsupported SASL mechanism")
	// ErrMalformed: a token that does not parse, is too large, or names
	// an authorization id other than the user.
	ErrMalformed = errors.New("malformed SASL message")
)

// Session is one connection's SASL exchange. Not safe for concurrent use
// (a connection's requests are answered in order).
type Session struct {
	users  Users
	logger *slog.Logger
	onFail func(reason string)

	mech      string
	conv      *scram.ServerConversation
	c1, s1    string                  // SCRAM client-first and server-first messages
	cred      scram.StoredCredentials // the SCRAM user's (or a dummy)
	unknown   bool                    // the SCRAM user is not configured (a dummy credential stands in)
	lookupErr error                   // why (unknown user, or no SCRAM-SHA-512 credential)
	user      string                  // the user named so far
	principal string
	// plainOK allows PLAIN: the connection is TLS, or never leaves the
	// machine (loopback), so the password is not sent in the clear over
	// a network.
	plainOK bool
}

// NewSession starts the exchange of one connection. logger (with the
// remote address) gets the WARN line of a failure; onFail, if set, counts
// it by reason (auth.Reason*).
func NewSession(users Users, logger *slog.Logger, onFail func(reason string)) *Session {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Session{users: users, logger: logger, onFail: onFail, plainOK: true}
}

// ErrPlainNeedsTLS: PLAIN asked on a plaintext connection from another
// machine.
var ErrPlainNeedsTLS = errors.New("SASL PLAIN needs TLS (or a loopback connection)")

// mechanisms are those this connection may use.
func (s *Session) mechanisms() []string {
	if s.plainOK {
		return slices.Clone(Mechanisms)
	}
	return []string{ScramSHA256, ScramSHA512}
}

// Principal is the authenticated user, "" until SaslAuthenticate
// succeeded.
func (s *Session) Principal() string { return s.principal }

// Handshake answers SaslHandshake: it picks the mechanism of the
// exchange. closeConn: the connection must close after the response (an
// unsupported mechanism or a handshake out of order, as Kafka does).
func (s *Session) Handshake(req *kmsg.SASLHandshakeRequest) (resp *kmsg.SASLHandshakeResponse, closeConn bool) {
	resp = req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = s.mechanisms()
	switch {
	case s.mech != "" || s.principal != "":
		resp.ErrorCode = kerr.IllegalSaslState.Code
		s.fail(auth.ReasonMalformed, fmt.Errorf("%w: a second SaslHandshake", ErrIllegalState))
		return resp, true
	case req.Mechanism == Plain && !s.plainOK:
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		s.fail(auth.ReasonMalformed, ErrPlainNeedsTLS)
		return resp, true
	case !slices.Contains(Mechanisms, req.Mechanism):
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		s.fail(auth.ReasonMalformed, fmt.Errorf("%w %q", ErrMechanism, req.Mechanism))
		return resp, true
	}
	s.mech = req.Mechanism
	if s.mech != Plain {
		hash, lookup := scram.SHA256, s.lookup
		if s.mech == ScramSHA512 {
			hash, lookup = scram.SHA512, s.lookup512
		}
		srv, err := hash.NewServer(lookup)
		if err != nil { // only for a nil lookup
			resp.ErrorCode = kerr.UnknownServerError.Code
			return resp, true
		}
		s.conv = srv.NewConversation()
	}
	return resp, false
}

// Authenticate answers SaslAuthenticate: one step of the mechanism.
// closeConn: the authentication failed (SASL_AUTHENTICATION_FAILED) or
// the message was out of order (ILLEGAL_SASL_STATE); the connection must
// close after the response.
func (s *Session) Authenticate(req *kmsg.SASLAuthenticateRequest) (resp *kmsg.SASLAuthenticateResponse, closeConn bool) {
	resp = req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	failed := func(code int16, msg string) (*kmsg.SASLAuthenticateResponse, bool) {
		resp.ErrorCode, resp.ErrorMessage, resp.SASLAuthBytes = code, &msg, nil
		return resp, true
	}
	switch {
	case s.principal != "" || s.mech == "":
		s.fail(auth.ReasonMalformed, fmt.Errorf("%w: SaslAuthenticate without a SaslHandshake before it", ErrIllegalState))
		return failed(kerr.IllegalSaslState.Code, "SaslAuthenticate must follow a SaslHandshake, once")
	case len(req.SASLAuthBytes) > MaxAuthBytes:
		s.fail(auth.ReasonMalformed, fmt.Errorf("%w: %d auth bytes exceed %d", ErrMalformed, len(req.SASLAuthBytes), MaxAuthBytes))
		return failed(kerr.SaslAuthenticationFailed.Code, "authentication failed: SASL message too large")
	}
	if s.mech == Plain {
		return s.plain(req.SASLAuthBytes, resp)
	}
	var out string
	var err error
	msg := string(req.SASLAuthBytes)
	done, valid := true, false
	if s.mech == ScramSHA256 && s.s1 != "" && s.doubledNonce(msg) {
		out, err = s.finalDoubled(msg)
		valid = err == nil
	} else {
		out, err = s.conv.Step(msg)
		done, valid = s.conv.Done(), s.conv.Valid()
		if s.s1 == "" && err == nil {
			s.c1, s.s1 = msg, out
		}
	}
	if s.user == "" {
		s.user = s.conv.Username()
	}
	switch {
	case err == nil && done && valid && !s.unknown:
		if az := s.conv.AuthzID(); az != "" && az != s.conv.Username() {
			s.fail(auth.ReasonMalformed, fmt.Errorf("%w: authorization id %q differs from the user name", ErrMalformed, az))
			return failed(kerr.SaslAuthenticationFailed.Code, "authentication failed: the authorization id must be empty or the user name")
		}
		s.principal = s.conv.Username()
		s.logger.Debug("kafka client authenticated", "user", s.principal, "mechanism", s.mech)
	case err == nil && !done:
	default:
		reason := auth.ReasonBadPassword
		switch {
		case s.unknown:
			reason = auth.ReasonUnknownUser
		case s.user == "":
			reason = auth.ReasonMalformed
		}
		if err == nil {
			err = ErrProof
		}
		if s.lookupErr != nil && errors.Is(s.lookupErr, auth.ErrNoSHA512) {
			reason, err = auth.ReasonBadPassword, s.lookupErr
		}
		s.fail(reason, err)
		return failed(kerr.SaslAuthenticationFailed.Code, "authentication failed: check the user name and password ("+s.mech+")")
	}
	resp.SASLAuthBytes = []byte(out)
	return resp, false
}

// plain checks a PLAIN message, "authzid NUL user NUL password" (RFC 4616).
func (s *Session) plain(msg []byte, resp *kmsg.SASLAuthenticateResponse) (*kmsg.SASLAuthenticateResponse, bool) {
	fail := func(reason string, err error) (*kmsg.SASLAuthenticateResponse, bool) {
		s.fail(reason, err)
		m := "authentication failed: check the user name and password (PLAIN)"
		resp.ErrorCode, resp.ErrorMessage = kerr.SaslAuthenticationFailed.Code, &m
		return resp, true
	}
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return fail(auth.ReasonMalformed, fmt.Errorf("%w: PLAIN message is not authzid NUL user NUL password", ErrMalformed))
	}
	authz, user, password := string(parts[0]), string(parts[1]), string(parts[2])
	s.user = user
	if authz != "" && authz != user {
		return fail(auth.ReasonMalformed, fmt.Errorf("%w: authorization id %q differs from the user name", ErrMalformed, authz))
	}
	if err := s.users.Authenticate(user, password); err != nil {
		reason := auth.ReasonBadPassword
		var f *auth.Failure
		if errors.As(err, &f) {
			reason = f.Reason
		}
		return fail(reason, err)
	}
	s.principal = user
	s.logger.Debug("kafka client authenticated", "user", user, "mechanism", Plain)
	resp.SASLAuthBytes = []byte{}
	return resp, false
}

// fail logs and counts one refusal: the user name and reason, never a
// password.
func (s *Session) fail(reason string, err error) {
	if s.onFail != nil {
		s.onFail(reason)
	}
	s.logger.Warn("kafka client authentication failed", "user", s.user, "mechanism", s.mech, "reason", reason, "err", err)
}

// lookup is the SCRAM credential lookup. An unknown user gets a dummy
// credential (a salt stable per name, keys nobody knows), so the exchange
// goes on and fails at the proof like a wrong password: a client cannot
// probe which names exist.
func (s *Session) lookup(user string) (scram.StoredCredentials, error) {
	return s.lookupWith(user, s.users.Lookup, sha256.Size)
}

// lookup512 is lookup for SCRAM-SHA-512; a user without a SHA-512
// credential gets a dummy one too (and the log says why it failed).
func (s *Session) lookup512(user string) (scram.StoredCredentials, error) {
	return s.lookupWith(user, s.users.Lookup512, sha512.Size)
}

func (s *Session) lookupWith(user string, find func(string) (scram.StoredCredentials, error), keySize int) (scram.StoredCredentials, error) {
	c, err := find(user)
	if err == nil {
		s.cred = c
		return c, nil
	}
	s.unknown, s.lookupErr = true, err
	m := hmac.New(sha256.New, dummySecret)
	m.Write([]byte(user))
	salt := m.Sum(nil)[:16]
	key := make([]byte, keySize)
	_, _ = rand.Read(key)
	s.cred = scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(salt), Iters: auth.DefaultIterations},
		StoredKey:  key, ServerKey: key,
	}
	return s.cred, nil
}

// dummySecret keys the dummy salts of this process.
var dummySecret = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}()
