package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Files are the PEM files of one TLS identity. CAFile is the CA that
// signs the other side's certificates: the client CA of a client-facing
// listener (optional) or the cluster CA of the peer port (required).
type Files struct {
	CertFile, KeyFile, CAFile string
}

// Enabled reports whether TLS is configured (a certificate is named).
func (f Files) Enabled() bool { return f.CertFile != "" }

// ErrInvalid is wrapped by every error about unusable certificate
// material, so callers can tell a bad file from other failures.
var ErrInvalid = errors.New("tls: unusable certificate material")

// LoadError is a failure to load one file of a Source.
type LoadError struct {
	Name string // the listener: client, http, cluster
	Path string
	Err  error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("tls %s: %s: %v (fix the file and send SIGHUP, or wait for the next check; the certificate in use is kept)", e.Name, e.Path, e.Err)
}

func (e *LoadError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// MinReloadInterval bounds how often Watch stats the files.
const MinReloadInterval = 100 * time.Millisecond

// DefaultReloadInterval is how often a node checks its certificate files
// for changes.
const DefaultReloadInterval = 5 * time.Second

// material is one loaded generation of a Source.
type material struct {
	cert   tls.Certificate
	leaf   *x509.Certificate
	pool   *x509.CertPool // nil: no CA file
	server *tls.Config
}

// stamp identifies a version of a file without reading it.
type stamp struct {
	mod  time.Time
	size int64
}

// Source is a certificate, its key and an optional CA pool, reloadable
// while handshakes use them.
type Source struct {
	name   string
	files  Files
	logger *slog.Logger
	onLoad func(notAfter time.Time)

	cur atomic.Pointer[material]

	mu     sync.Mutex // serialises loads; guards seen
	seen   [3]stamp
	failed bool // the last load failed (Watch logs only on changes)
}

// NewSource loads f for the listener called name (used in logs, errors
// and metrics). requireCA makes an empty CAFile an error (the peer port).
// onLoad, when not nil, is called with the certificate's expiry after
// every successful load, the first one included. A nil logger discards.
func NewSource(name string, f Files, requireCA bool, logger *slog.Logger, onLoad func(notAfter time.Time)) (*Source, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, &LoadError{Name: name, Path: f.CertFile + "," + f.KeyFile, Err: errors.New("both cert_file and key_file must be set")}
	}
	if requireCA && f.CAFile == "" {
		return nil, &LoadError{Name: name, Path: "ca_file", Err: errors.New("the cluster CA file must be set: peers are authenticated with it")}
	}
	s := &Source{name: name, files: f, logger: logger.With("component", "tls", "listener", name), onLoad: onLoad}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Name is the listener name the Source was created with.
func (s *Source) Name() string { return s.name }

// NotAfter is the expiry of the certificate in use.
func (s *Source) NotAfter() time.Time { return s.cur.Load().leaf.NotAfter }

// Leaf is the certificate in use.
func (s *Source) Leaf() *x509.Certificate { return s.cur.Load().leaf }

// Reload reads the files again. On success the new material serves the
// next handshakes; on failure the old material stays and the error says
// which file is wrong.
func (s *Source) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = s.stamps()
	return s.loadLocked()
}

func (s *Source) loadLocked() error {
	m, err := s.read()
	if err != nil {
		s.failed = true
		return err
	}
	s.failed = false
	s.cur.Store(m)
	if s.onLoad != nil {
		s.onLoad(m.leaf.NotAfter)
	}
	return nil
}

func (s *Source) read() (*material, error) {
	f := s.files
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, &LoadError{Name: s.name, Path: f.CertFile + " / " + f.KeyFile, Err: err}
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, &LoadError{Name: s.name, Path: f.CertFile, Err: err}
		}
	}
	if now := time.Now(); now.After(leaf.NotAfter) {
		return nil, &LoadError{Name: s.name, Path: f.CertFile, Err: fmt.Errorf("certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	m := &material{cert: cert, leaf: leaf}
	if f.CAFile != "" {
		if m.pool, err = LoadPool(f.CAFile); err != nil {
			return nil, &LoadError{Name: s.name, Path: f.CAFile, Err: err}
		}
	}
	m.server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if m.pool != nil {
		m.server.ClientAuth = tls.RequireAndVerifyClientCert
		m.server.ClientCAs = m.pool
	}
	return m, nil
}

// LoadPool reads a PEM file of one or more CA certificates.
func LoadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

func (s *Source) stamps() [3]stamp {
	var out [3]stamp
	for i, p := range []string{s.files.CertFile, s.files.KeyFile, s.files.CAFile} {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			out[i] = stamp{mod: fi.ModTime(), size: fi.Size()}
		}
	}
	return out
}

// check reloads when a file changed since the last load attempt.
func (s *Source) check() {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stamps()
	if st == s.seen {
		return
	}
	s.seen = st
	if err := s.loadLocked(); err != nil {
		s.logger.Error("certificate reload failed; still serving the previous certificate", "err", err)
		return
	}
	s.logger.Info("certificate reloaded", "subject", s.Leaf().Subject.String(), "not_after", s.NotAfter().UTC().Format(time.RFC3339))
}

// Watch checks the files every interval (at least MinReloadInterval) and
// reloads them when one changed, until ctx is done.
func (s *Source) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(max(interval, MinReloadInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.check()
		}
	}
}

// ServerConfig is the configuration of a listener: TLS 1.2 or newer, the
// current certificate, and, when the Source has a CA file, a required
// client certificate signed by it. Reloads apply to later handshakes.
func (s *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load().server, nil
		},
	}
}

// PeerClientConfig is the configuration for dialing the peer at addr
// (host:port): this node's certificate as the client certificate, the
// CA pool as the roots, and the dialed host as the name the peer's
// certificate must carry.
func (s *Source) PeerClientConfig(addr string) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("tls %s: peer address %q: %w", s.name, addr, err)
	}
	m := s.cur.Load()
	return &tls.Config{
		MinVersion: tls.VersionTLS12, ServerName: host, RootCAs: m.pool,
		// Always present the certificate (crypto/tls would withhold one the
		// peer's CA list does not name), so a peer of another CA is refused
		// for its certificate and says so in its log.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &m.cert, nil },
	}, nil
}
