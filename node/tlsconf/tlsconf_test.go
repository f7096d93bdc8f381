package tlsconf_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcerts"
	"github.com/walrus-go/walrus/node/tlsconf"
)

// handshake runs both sides over a pipe and returns the server's and
// the client's error, plus the certificate the client saw.
func handshake(t *testing.T, server, client *tls.Config) (serr, cerr error, seen *x509.Certificate) {
	t.Helper()
	// Real TCP on loopback: kernel buffers let either side write its alert
	// while the other is not reading (net.Pipe would block until timeout).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		serr = tls.Server(a, server).HandshakeContext(ctx)
		if serr != nil {
			_ = a.Close()
		}
	})
	cc := tls.Client(b, client)
	cerr = cc.HandshakeContext(ctx)
	if cerr != nil {
		_ = b.Close()
	} else if st := cc.ConnectionState(); len(st.PeerCertificates) > 0 {
		seen = st.PeerCertificates[0]
	}
	wg.Wait()
	return serr, cerr, seen
}

func clientOf(ca *testcerts.CA, name string, leaf *testcerts.Leaf, t *testing.T) *tls.Config {
	c := &tls.Config{RootCAs: ca.Pool(), ServerName: name}
	if leaf != nil {
		c.Certificates = []tls.Certificate{leaf.TLSCertificate(t)}
	}
	return c
}

func TestServerConfig(t *testing.T) {
	ca, other := testcerts.NewCA(t, "ca"), testcerts.NewCA(t, "other")
	dir := t.TempDir()
	plain := testcerts.WriteFiles(t, dir, "plain", ca, ca.Localhost(t, "node"))
	src, err := tlsconf.NewSource("client", tlsconf.Files{CertFile: plain.Cert, KeyFile: plain.Key}, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mtls := testcerts.WriteFiles(t, dir, "mtls", ca, ca.Localhost(t, "node"))
	msrc, err := tlsconf.NewSource("client", tlsconf.Files{CertFile: mtls.Cert, KeyFile: mtls.Key, CAFile: mtls.CA}, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	user := ca.Issue(t, testcerts.LeafOptions{CommonName: "alice", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	stranger := other.Issue(t, testcerts.LeafOptions{CommonName: "mallory", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	tls11 := clientOf(ca, "127.0.0.1", nil, t)
	tls11.MaxVersion = tls.VersionTLS11
	for _, tc := range []struct {
		name   string
		src    *tlsconf.Source
		client *tls.Config
		ok     bool
	}{
		{"no client CA: server verified", src, clientOf(ca, "127.0.0.1", nil, t), true},
		{"wrong root at the client", src, clientOf(other, "127.0.0.1", nil, t), false},
		{"name not in the certificate", src, clientOf(ca, "example.com", nil, t), false},
		{"TLS 1.1 refused", src, tls11, false},
		{"client CA: no client certificate", msrc, clientOf(ca, "localhost", nil, t), false},
		{"client CA: certificate from the CA", msrc, clientOf(ca, "localhost", user, t), true},
		{"client CA: certificate from another CA", msrc, clientOf(ca, "localhost", stranger, t), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serr, cerr, _ := handshake(t, tc.src.ServerConfig(), tc.client)
			if ok := serr == nil && cerr == nil; ok != tc.ok {
				t.Fatalf("handshake ok = %v, want %v (server: %v, client: %v)", ok, tc.ok, serr, cerr)
			}
		})
	}
}

// TestPeerIdentity: a peer must name the dialed host and carry the
// right usages, from the cluster CA.
func TestPeerIdentity(t *testing.T) {
	ca, other := testcerts.NewCA(t, "cluster"), testcerts.NewCA(t, "other")
	dir := t.TempDir()
	load := func(name string, ca *testcerts.CA, l *testcerts.Leaf) *tlsconf.Source {
		f := testcerts.WriteFiles(t, dir, name, ca, l)
		s, err := tlsconf.NewSource("cluster", tlsconf.Files{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA}, true, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	n1 := load("n1", ca, ca.Localhost(t, "node1"))
	n2 := load("n2", ca, ca.Localhost(t, "node2"))
	elsewhere := load("n3", ca, ca.Issue(t, testcerts.LeafOptions{CommonName: "node3", DNSNames: []string{"node3.example"}}))
	serverOnly := load("n4", ca, ca.Issue(t, testcerts.LeafOptions{CommonName: "node4", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}))
	foreign := load("n5", other, other.Localhost(t, "node5"))
	for _, tc := range []struct {
		name           string
		dialer, server *tlsconf.Source
		addr           string
		ok             bool
	}{
		{"same CA, IP SAN", n1, n2, "127.0.0.1:6001", true},
		{"same CA, DNS SAN", n1, n2, "localhost:6001", true},
		{"server does not name the dialed host", n1, elsewhere, "127.0.0.1:6001", false},
		{"dialer without client auth usage", serverOnly, n2, "127.0.0.1:6001", false},
		{"dialer from another CA", foreign, n2, "127.0.0.1:6001", false},
		{"server from another CA", n1, foreign, "127.0.0.1:6001", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, err := tc.dialer.PeerClientConfig(tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			serr, cerr, _ := handshake(t, tc.server.ServerConfig(), cc)
			if ok := serr == nil && cerr == nil; ok != tc.ok {
				t.Fatalf("handshake ok = %v, want %v (server: %v, client: %v)", ok, tc.ok, serr, cerr)
			}
		})
	}
	if _, err := tlsconf.NewSource("cluster", tlsconf.Files{CertFile: "a", KeyFile: "b"}, true, nil, nil); !errors.Is(err, tlsconf.ErrInvalid) {
		t.Fatalf("cluster source without a CA: err = %v, want ErrInvalid", err)
	}
}

func TestReload(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	dir := t.TempDir()
	first := ca.Localhost(t, "first")
	f := testcerts.WriteFiles(t, dir, "node", ca, first)
	var mu sync.Mutex
	var expiries []time.Time
	src, err := tlsconf.NewSource("client", tlsconf.Files{CertFile: f.Cert, KeyFile: f.Key}, false, nil, func(na time.Time) {
		mu.Lock()
		expiries = append(expiries, na)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := func() *x509.Certificate {
		_, cerr, c := handshake(t, src.ServerConfig(), clientOf(ca, "127.0.0.1", nil, t))
		if cerr != nil {
			t.Fatal(cerr)
		}
		return c
	}
	if got := seen(); got.SerialNumber.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatalf("serving %v, want the first certificate", got.Subject)
	}

	// A broken key file: Reload fails, the old certificate stays.
	testcerts.Write(t, f.Key, []byte("not a key"))
	if err := src.Reload(); !errors.Is(err, tlsconf.ErrInvalid) {
		t.Fatalf("Reload of a bad key: err = %v, want ErrInvalid", err)
	}
	if got := seen(); got.SerialNumber.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatalf("after a failed reload serving %v, want the first certificate", got.Subject)
	}
	// An expired certificate is refused too.
	expired := ca.Issue(t, testcerts.LeafOptions{CommonName: "old", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	testcerts.WriteFiles(t, dir, "node", ca, expired)
	if err := src.Reload(); !errors.Is(err, tlsconf.ErrInvalid) {
		t.Fatalf("Reload of an expired certificate: err = %v, want ErrInvalid", err)
	}

	// Watch picks up new files without a Reload call.
	second := ca.Issue(t, testcerts.LeafOptions{CommonName: "second", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, NotAfter: time.Now().Add(72 * time.Hour)})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { src.Watch(ctx, tlsconf.MinReloadInterval) })
	defer func() { cancel(); wg.Wait() }()
	testcerts.WriteFiles(t, dir, "node", ca, second)
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for src.Leaf().SerialNumber.Cmp(second.Cert.SerialNumber) != 0 {
		select {
		case <-deadline:
			t.Fatal("Watch did not load the new certificate")
		case <-tick.C:
		}
	}
	if got := seen(); got.SerialNumber.Cmp(second.Cert.SerialNumber) != 0 {
		t.Fatalf("after the change serving %v, want the second certificate", got.Subject)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(expiries) != 2 || !expiries[1].Equal(second.Cert.NotAfter) {
		t.Fatalf("onLoad saw %v, want the first and the second expiry", expiries)
	}
}

// TestListenerRefusesPlaintext: bytes sent without a handshake never
// reach the reader, and the client gets no application reply.
func TestListenerRefusesPlaintext(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	f := testcerts.WriteFiles(t, t.TempDir(), "node", ca, ca.Localhost(t, "node"))
	src, err := tlsconf.NewSource("client", tlsconf.Files{CertFile: f.Cert, KeyFile: f.Key}, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tlsconf.NewListener(inner, src.ServerConfig(), slog.New(slog.DiscardHandler))
	defer ln.Close()
	type result struct {
		n   int
		err error
	}
	got := make(chan result, 2)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			if err == nil {
				_, _ = c.Write([]byte("OK\n"))
			}
			_ = c.Close()
			got <- result{n, err}
		}
	})

	plain, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Write([]byte("PUT logs hello\n")); err != nil {
		t.Fatal(err)
	}
	_ = plain.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, _ := io.ReadAll(plain)
	r := <-got
	if !errors.Is(r.err, tlsconf.ErrHandshake) || r.n != 0 {
		t.Fatalf("server read %d bytes, err %v; want nothing and ErrHandshake", r.n, r.err)
	}
	// At most a TLS alert record (type 21) comes back, never "OK".
	if len(reply) > 0 && reply[0] != 21 {
		t.Fatalf("plaintext client got %q", reply)
	}

	tc, err := tls.Dial("tcp", ln.Addr().String(), clientOf(ca, "127.0.0.1", nil, t))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if _, err := tc.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.err != nil || r.n != 1 {
		t.Fatalf("TLS client: server read %d bytes, err %v", r.n, r.err)
	}
}

func TestClientConfig(t *testing.T) {
	if _, err := tlsconf.ClientConfig("", "cert-only.pem", ""); !errors.Is(err, tlsconf.ErrInvalid) {
		t.Fatalf("cert without key: err = %v", err)
	}
	if _, err := tlsconf.ClientConfig("/nonexistent/ca.pem", "", ""); !errors.Is(err, tlsconf.ErrInvalid) {
		t.Fatalf("missing CA: err = %v", err)
	}
	ca := testcerts.NewCA(t, "ca")
	f := testcerts.WriteFiles(t, t.TempDir(), "cli", ca, ca.Localhost(t, "cli"))
	cfg, err := tlsconf.ClientConfig(f.CA, f.Cert, f.Key)
	if err != nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("ClientConfig = %+v, %v", cfg, err)
	}
}
