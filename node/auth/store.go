package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/xdg-go/scram"
)

// User is one configured user (configs.UserConfig).
type User struct {
	Name         string
	PasswordHash string
}

// Failure reasons, the reason label of walrus_auth_failures_total.
const (
	ReasonUnknownUser = "unknown_user"
	ReasonBadPassword = "bad_password"
	ReasonMalformed   = "malformed"
	ReasonMissing     = "missing" // a command before AUTH
	ReasonDisabled    = "disabled"
)

// ErrAuthFailed is wrapped by every *Failure.
var ErrAuthFailed = errors.New("authentication failed")

// Failure is a refused authentication. Reason is for metrics and logs;
// a client is told only "authentication failed", so it cannot probe
// which user names exist.
type Failure struct{ Reason string }

func (f *Failure) Error() string { return "authentication failed (" + f.Reason + ")" }

// Unwrap makes errors.Is(err, ErrAuthFailed) true.
func (f *Failure) Unwrap() error { return ErrAuthFailed }

// Store is the set of users. The zero of *Store (nil) and a Store with no
// users have authentication off. It is read-only after NewStore, so safe
// for concurrent use.
type Store struct {
	users    map[string]Credential
	users512 map[string]Credential // users with a SCRAM-SHA-512 credential too
	dummy    Credential            // verified for unknown users, so timing does not tell
}

// NewStore validates users (empty names, duplicates, bad hashes) and
// returns the store. Errors name the entry (users[i]).
func NewStore(users []User) (*Store, error) {
	s := &Store{users: make(map[string]Credential, len(users)), users512: map[string]Credential{}}
	var errs []error
	for i, u := range users {
		switch {
		case u.Name == "":
			errs = append(errs, fmt.Errorf("users[%d]: empty name: give every user a name", i))
			continue
		case containsSpace(u.Name):
			errs = append(errs, fmt.Errorf("users[%d] (%s): the name must not contain white space (AUTH <user> <password> is split on spaces)", i, u.Name))
			continue
		}
		if _, dup := s.users[u.Name]; dup {
			errs = append(errs, fmt.Errorf("users[%d] (%s): duplicate name: list each user once", i, u.Name))
			continue
		}
		c, c512, err := ParseHash(u.PasswordHash)
		if err != nil {
			errs = append(errs, fmt.Errorf("users[%d] (%s): %w", i, u.Name, err))
			continue
		}
		s.users[u.Name] = c
		if c512 != nil {
			s.users512[u.Name] = *c512
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.dummy = Credential{Iterations: DefaultIterations, Salt: make([]byte, saltBytes), StoredKey: make([]byte, keyBytes)}
	return s, nil
}

func containsSpace(s string) bool {
	for _, c := range s {
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			return true
		}
	}
	return false
}

// Enabled reports whether any user is configured (authentication on).
func (s *Store) Enabled() bool { return s != nil && len(s.users) > 0 }

// Authenticate checks a user name and plain password. The error is a
// *Failure with the reason.
func (s *Store) Authenticate(user, password string) error {
	if !s.Enabled() {
		return &Failure{Reason: ReasonDisabled}
	}
	c, ok := s.users[user]
	if !ok {
		s.dummy.Verify(password) // same cost as a known user
		return &Failure{Reason: ReasonUnknownUser}
	}
	if !c.Verify(password) {
		return &Failure{Reason: ReasonBadPassword}
	}
	return nil
}

// ErrUnknownUser is returned by Lookup for a name not configured.
var ErrUnknownUser = errors.New("unknown user")

// Lookup returns user's stored credentials; its signature is
// scram.CredentialLookup, so a SASL/SCRAM-SHA-256 server
// (scram.SHA256.NewServer(store.Lookup)) authenticates against the same
// users as AUTH.
func (s *Store) Lookup(user string) (scram.StoredCredentials, error) {
	if s != nil {
		if c, ok := s.users[user]; ok {
			return c.Stored(), nil
		}
	}
	return scram.StoredCredentials{}, fmt.Errorf("%w %q", ErrUnknownUser, user)
}

// ErrNoSHA512 is returned by Lookup512 for a user whose password_hash has
// no SCRAM-SHA-512 credential (made before `walrus-cli user hash` wrote
// one).
var ErrNoSHA512 = errors.New("no SCRAM-SHA-512 credential: make the password_hash again with walrus-cli user hash")

// Lookup512 is Lookup for SASL SCRAM-SHA-512.
func (s *Store) Lookup512(user string) (scram.StoredCredentials, error) {
	if s != nil {
		if c, ok := s.users512[user]; ok {
			return c.Stored(), nil
		}
		if _, ok := s.users[user]; ok {
			return scram.StoredCredentials{}, fmt.Errorf("user %q: %w", user, ErrNoSHA512)
		}
	}
	return scram.StoredCredentials{}, fmt.Errorf("%w %q", ErrUnknownUser, user)
}

// Anonymous is the principal of a connection that did not authenticate
// (only possible with authentication off); ACL rules can name it.
const Anonymous = "ANONYMOUS"

type principalKey struct{}

// WithPrincipal returns ctx carrying the connection's principal.
func WithPrincipal(ctx context.Context, principal string) context.Context {
	return context.WithValue(ctx, principalKey{}, principal)
}

// Principal returns the principal in ctx, or Anonymous.
func Principal(ctx context.Context) string {
	if p, ok := ctx.Value(principalKey{}).(string); ok && p != "" {
		return p
	}
	return Anonymous
}

// CertPrincipal returns the principal a verified TLS client certificate
// proves: the subject CommonName of the leaf certificate. It returns ""
// when the handshake verified no client certificate (none sent, or the
// listener does not verify them).
func CertPrincipal(st tls.ConnectionState) string {
	if !st.HandshakeComplete || len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return ""
	}
	return st.PeerCertificates[0].Subject.CommonName
}
