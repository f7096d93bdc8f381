package client_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcerts"
	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/server"
	"github.com/walrus-go/walrus/node/tlsconf"
)

// TestTLS: Options.TLS dials with the address's host as the server name,
// refuses a server its CA did not sign, and redials over TLS after the
// server closed an idle connection.
func TestTLS(t *testing.T) {
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
	ln := tlsconf.NewListener(inner, src.ServerConfig(), nil)
	srv := server.New(server.Config{IdleTimeout: 50 * time.Millisecond}, &memHandler{}, nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	addr := inner.Addr().String()

	if _, err := client.Dial(t.Context(), addr, client.Options{TLS: &tls.Config{RootCAs: testcerts.NewCA(t, "other").Pool()}}); err == nil {
		t.Fatal("dial verified a server of another CA")
	}
	c := dial(t, addr, client.Options{TLS: &tls.Config{RootCAs: ca.Pool()}})
	if err := c.Put(t.Context(), "t", []byte("one")); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for srv.Conns() != 0 {
		select {
		case <-deadline:
			t.Fatal("server did not close the idle connection")
		case <-tick.C:
		}
	}
	// Past the client's staleness window (200 ms), the next call checks
	// the connection and redials.
	<-time.After(250 * time.Millisecond)
	if err := c.Put(t.Context(), "t", []byte("two")); err != nil {
		t.Fatalf("Put after the server closed the idle TLS connection: %v", err)
	}
}
