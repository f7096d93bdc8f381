package server_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/auth"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/server"
)

// principalHandler answers every request with "OK <principal>".
type principalHandler struct {
	mu   sync.Mutex
	seen []string
}

func (h *principalHandler) Handle(ctx context.Context, reqs []protocol.Request) []protocol.Reply {
	p := auth.Principal(ctx)
	h.mu.Lock()
	h.seen = append(h.seen, p)
	h.mu.Unlock()
	out := make([]protocol.Reply, len(reqs))
	for i := range out {
		out[i] = protocol.Payload([]byte(p))
	}
	return out
}

func serveOn(t *testing.T, cfg server.Config, h server.Handler, ln net.Listener) {
	t.Helper()
	srv := server.New(cfg, h, testLogger(t))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(t.Context(), ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

func exchange(t *testing.T, c net.Conn, br *bufio.Reader, lines ...string) []string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var buf []byte
	for _, l := range lines {
		buf = protocol.AppendFrame(buf, []byte(l))
	}
	if _, err := c.Write(buf); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(lines))
	for i := range lines {
		f, err := protocol.ReadFrame(br, protocol.DefaultMaxFrameBytes)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		out[i] = protocol.ParseReply(f).String()
	}
	return out
}

func testStore(t *testing.T) *auth.Store {
	h, err := auth.HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	s, err := auth.NewStore([]auth.User{{Name: "alice", PasswordHash: h}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A pipelined batch: requests before AUTH are refused, AUTH switches the
// principal for the requests after it, in order.
func TestAuthPipelinedOrder(t *testing.T) {
	var reasons []string
	var mu sync.Mutex
	h := &principalHandler{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, server.Config{Auth: testStore(t), OnAuthFailure: func(r string) { mu.Lock(); reasons = append(reasons, r); mu.Unlock() }}, h, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := exchange(t, c, bufio.NewReader(c), "GET x", "AUTH alice bad", "AUTH alice pw", "GET x", "AUTH", "GET y")
	want := []string{"ERR authentication required: send AUTH <user> <password> first", "ERR authentication failed: check the user name and password",
		"OK", "OK alice", "ERR usage: AUTH <user> <password>", "OK alice"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("reply %d: %q, want %q", i, got[i], want[i])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reasons) != 3 || reasons[0] != auth.ReasonMissing || reasons[1] != auth.ReasonBadPassword || reasons[2] != auth.ReasonMalformed {
		t.Fatalf("failure reasons %v", reasons)
	}
}

// A verified TLS client certificate makes its CommonName the principal,
// with no AUTH; a TLS client without a certificate still needs AUTH.
func TestTLSClientCertificatePrincipal(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(cn string, usage x509.ExtKeyUsage, serial int64) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	tcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(tcpLn, &tls.Config{Certificates: []tls.Certificate{leaf("node", x509.ExtKeyUsageServerAuth, 2)},
		ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12})
	serveOn(t, server.Config{Auth: testStore(t)}, &principalHandler{}, ln)

	dialTLS := func(certs []tls.Certificate) *tls.Conn {
		c, err := tls.Dial("tcp", tcpLn.Addr().String(), &tls.Config{RootCAs: pool, Certificates: certs, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	c := dialTLS([]tls.Certificate{leaf("billing", x509.ExtKeyUsageClientAuth, 3)})
	if got := exchange(t, c, bufio.NewReader(c), "GET x"); got[0] != "OK billing" {
		t.Fatalf("with a client certificate: %q", got[0])
	}
	c2 := dialTLS(nil)
	br := bufio.NewReader(c2)
	if got := exchange(t, c2, br, "GET x", "AUTH alice pw", "GET x"); got[0] != "ERR authentication required: send AUTH <user> <password> first" || got[2] != "OK alice" {
		t.Fatalf("without a client certificate: %q", got)
	}
}
