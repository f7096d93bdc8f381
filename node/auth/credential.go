package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/xdg-go/scram"
)

// Scheme is the prefix of a stored SCRAM-SHA-256 credential, Scheme512
// of the optional SCRAM-SHA-512 one that may follow it (after a space) in
// a password_hash, for SASL SCRAM-SHA-512 on the Kafka port.
const (
	Scheme    = "SCRAM-SHA-256"
	Scheme512 = "SCRAM-SHA-512"
)

// Iteration bounds: 4096 is the SCRAM minimum (RFC 7677); more makes a
// stolen hash slower to attack and every AUTH slower to check.
const (
	DefaultIterations = 4096
	MinIterations     = 4096
	MaxIterations     = 1 << 20
	saltBytes         = 16
	keyBytes          = 32 // SHA-256
	keyBytes512       = 64 // SHA-512
)

// ErrBadCredential is wrapped by every credential parse error.
var ErrBadCredential = errors.New("bad password_hash")

// Credential is one user's stored SCRAM-SHA-256 credential: the password
// never appears in it, only keys derived from it with a random salt.
// Its text form is PostgreSQL's:
//
//	SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>
type Credential struct {
	// SHA512: a SCRAM-SHA-512 credential (64-byte keys).
	SHA512     bool
	Iterations int
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
}

// String returns the text form ParseCredential reads.
func (c Credential) String() string {
	b64 := base64.StdEncoding.EncodeToString
	scheme := Scheme
	if c.SHA512 {
		scheme = Scheme512
	}
	return fmt.Sprintf("%s$%d:%s$%s:%s", scheme, c.Iterations, b64(c.Salt), b64(c.StoredKey), b64(c.ServerKey))
}

// ParseCredential parses the text form of a Credential. Errors wrap
// ErrBadCredential and say which part is wrong (never echoing the input,
// which is a secret too).
func ParseCredential(s string) (Credential, error) {
	bad := func(what string) (Credential, error) {
		return Credential{}, fmt.Errorf("%w: %s (expected %s$<iterations>:<salt>$<StoredKey>:<ServerKey> from `walrus-cli user hash`)", ErrBadCredential, what, Scheme)
	}
	scheme, rest, ok := strings.Cut(s, "$")
	if !ok || (scheme != Scheme && scheme != Scheme512) {
		return bad("unknown scheme, want " + Scheme + " or " + Scheme512)
	}
	sha512 := scheme == Scheme512
	size := keyBytes
	if sha512 {
		size = keyBytes512
	}
	factors, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return bad("missing '$' before the keys")
	}
	iterText, saltText, ok := strings.Cut(factors, ":")
	if !ok {
		return bad("missing ':' between iterations and salt")
	}
	iters, err := strconv.Atoi(iterText)
	if err != nil || iters < MinIterations || iters > MaxIterations {
		return bad(fmt.Sprintf("iterations must be a number in %d..%d", MinIterations, MaxIterations))
	}
	storedText, serverText, ok := strings.Cut(keys, ":")
	if !ok {
		return bad("missing ':' between StoredKey and ServerKey")
	}
	dec := base64.StdEncoding.Strict().DecodeString
	salt, err := dec(saltText)
	if err != nil || len(salt) == 0 {
		return bad("salt is not non-empty base64")
	}
	stored, err := dec(storedText)
	if err != nil || len(stored) != size {
		return bad(fmt.Sprintf("StoredKey is not %d bytes of base64", size))
	}
	server, err := dec(serverText)
	if err != nil || len(server) != size {
		return bad(fmt.Sprintf("ServerKey is not %d bytes of base64", size))
	}
	return Credential{SHA512: sha512, Iterations: iters, Salt: salt, StoredKey: stored, ServerKey: server}, nil
}

// ParseHash parses a password_hash: a SCRAM-SHA-256 credential, then
// optionally a space and a SCRAM-SHA-512 one (nil when absent).
func ParseHash(s string) (Credential, *Credential, error) {
	first, second, two := strings.Cut(s, " ")
	c, err := ParseCredential(first)
	if err == nil && c.SHA512 {
		err = fmt.Errorf("%w: the SCRAM-SHA-256 credential must come first", ErrBadCredential)
	}
	if err != nil || !two {
		return c, nil, err
	}
	c512, err := ParseCredential(second)
	if err == nil && !c512.SHA512 {
		err = fmt.Errorf("%w: the second credential must be SCRAM-SHA-512", ErrBadCredential)
	}
	if err != nil {
		return Credential{}, nil, err
	}
	return c, &c512, nil
}

// NewCredential derives a credential from password with a fresh random
// salt and the given iterations (0: DefaultIterations).
func NewCredential(password string, iterations int) (Credential, error) {
	return newCredential(password, iterations, false)
}

func newCredential(password string, iterations int, sha512 bool) (Credential, error) {
	if iterations == 0 {
		iterations = DefaultIterations
	}
	if iterations < MinIterations || iterations > MaxIterations {
		return Credential{}, fmt.Errorf("iterations %d: must be %d..%d", iterations, MinIterations, MaxIterations)
	}
	if password == "" {
		return Credential{}, errors.New("empty password: give a non-empty password")
	}
	salt := make([]byte, saltBytes)
	if _, err := rand.Read(salt); err != nil {
		return Credential{}, fmt.Errorf("read random salt: %w", err)
	}
	sc, err := derive(password, salt, iterations, sha512)
	if err != nil {
		return Credential{}, err
	}
	return Credential{SHA512: sha512, Iterations: iterations, Salt: salt, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}, nil
}

// HashPassword returns the text form of a new credential for password:
// what `walrus-cli user hash` prints.
func HashPassword(password string) (string, error) {
	c, err := NewCredential(password, 0)
	if err != nil {
		return "", err
	}
	c512, err := newCredential(password, 0, true)
	if err != nil {
		return "", err
	}
	return c.String() + " " + c512.String(), nil
}

func derive(password string, salt []byte, iterations int, sha512 bool) (scram.StoredCredentials, error) {
	// The user name takes no part in the stored keys; SASLprep of the
	// password does, as a SCRAM client would apply it.
	hash := scram.SHA256
	if sha512 {
		hash = scram.SHA512
	}
	cl, err := hash.NewClient("", password, "")
	if err != nil {
		return scram.StoredCredentials{}, fmt.Errorf("password not usable with SCRAM (SASLprep): %w", err)
	}
	return cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iterations})
}

// Verify reports whether password matches c: it recomputes StoredKey with
// c's salt and iterations and compares in constant time.
func (c Credential) Verify(password string) bool {
	sc, err := derive(password, c.Salt, c.Iterations, c.SHA512)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(sc.StoredKey, c.StoredKey) == 1
}

// Stored returns c as the xdg-go/scram server's stored credentials, for
// a SASL/SCRAM-SHA-256 exchange (the Kafka listener's seam).
func (c Credential) Stored() scram.StoredCredentials {
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations},
		StoredKey:  c.StoredKey,
		ServerKey:  c.ServerKey,
	}
}
