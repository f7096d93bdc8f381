package mux

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcerts"
	"github.com/walrus-go/walrus/node/tlsconf"
)

func clusterSource(t *testing.T, ca *testcerts.CA, name string) *tlsconf.Source {
	t.Helper()
	f := testcerts.WriteFiles(t, t.TempDir(), name, ca, ca.Localhost(t, name))
	s, err := tlsconf.NewSource("cluster", tlsconf.Files{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA}, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// lockedBuffer is a log sink safe for the mux's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMuxTLS: a peer with a certificate from the cluster CA gets through;
// one from another CA, a plaintext one and a silent one never reach a
// sub-listener, are logged with their address, and do not hold up the
// accept loop.
func TestMuxTLS(t *testing.T) {
	ca, other := testcerts.NewCA(t, "cluster"), testcerts.NewCA(t, "other")
	server, good, bad := clusterSource(t, ca, "n1"), clusterSource(t, ca, "n2"), clusterSource(t, other, "n3")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	m := New(ln, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	m.SetTLS(server.ServerConfig(), server.PeerClientConfig)
	rpcLn := m.Listener(TagRPC)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = m.Serve(ctx) })
	defer func() { cancel(); wg.Wait() }()
	addr := ln.Addr().String()
	dctx, dcancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer dcancel()

	// A silent connection first: it must not block the others.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Plaintext: the tag and a frame, then the mux closes it.
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	_, _ = plain.Write([]byte{TagRPC, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	_ = plain.SetReadDeadline(time.Now().Add(5 * time.Second))
	if reply, _ := io.ReadAll(plain); len(reply) > 0 && reply[0] != 21 {
		t.Fatalf("plaintext peer got %q, want at most a TLS alert", reply)
	}
	// Another CA: the dial fails.
	cfg, err := bad.PeerClientConfig(addr)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := DialTLS(dctx, addr, TagRPC, cfg); err == nil {
		// TLS 1.3: the client may finish before the server refuses; then
		// the server closes without routing it.
		_, _ = c.Write([]byte("evil"))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, rerr := c.Read(make([]byte, 1)); rerr == nil {
			t.Fatal("a peer from another CA was answered")
		}
		_ = c.Close()
	}
	// A good peer: routed, and it is the first thing the RPC listener sees.
	gm := New(mustListen(t), nil, slog.New(slog.DiscardHandler))
	defer gm.Close()
	gm.SetTLS(good.ServerConfig(), good.PeerClientConfig)
	c, err := gm.Dial(dctx, addr, TagRPC)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("good")); err != nil {
		t.Fatal(err)
	}
	s, err := rpcLn.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "good" {
		t.Fatalf("first routed connection read %q, %v; want the good peer", buf, err)
	}
	if st := s.(*tls.Conn).ConnectionState(); len(st.PeerCertificates) == 0 || st.PeerCertificates[0].Subject.CommonName != "n2" {
		t.Fatalf("routed connection's peer certificate: %+v", st.PeerCertificates)
	}
	for _, want := range []string{"peer connection refused", "remote=" + plain.LocalAddr().String()} {
		if !bytes.Contains([]byte(logs.String()), []byte(want)) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
