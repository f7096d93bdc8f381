package clicmd

import (
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/internal/testcerts"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/server"
	"github.com/walrus-go/walrus/node/tlsconf"
)

// TestTLSFlags: --tls-ca/--tls-cert/--tls-key reach the real dialer
// against a listener that requires a client certificate (what a node
// with tls.client_ca_file does), and the environment variables do too.
func TestTLSFlags(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	dir := t.TempDir()
	node := testcerts.WriteFiles(t, dir, "node", ca, ca.Localhost(t, "node"))
	user := testcerts.WriteFiles(t, dir, "user", ca, ca.Issue(t, testcerts.LeafOptions{CommonName: "walrus-cli", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}))
	src, err := tlsconf.NewSource("client", tlsconf.Files{CertFile: node.Cert, KeyFile: node.Key, CAFile: node.CA}, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{}, server.HandlerFunc(func(_ context.Context, reqs []protocol.Request) []protocol.Reply {
		out := make([]protocol.Reply, len(reqs))
		for i := range reqs {
			out[i] = protocol.Raw([]byte(`{"id":1,"state":"Leader"}`))
		}
		return out
	}), nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), tlsconf.NewListener(inner, src.ServerConfig(), nil)) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	addr := inner.Addr().String()
	run := func(env map[string]string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Run(t.Context(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errb, Getenv: func(k string) string { return env[k] }})
		return code, out.String() + errb.String()
	}
	if code, out := run(nil, "--addr", addr, "--tls-ca", user.CA, "--tls-cert", user.Cert, "--tls-key", user.Key, "metrics"); code != 0 || !strings.Contains(out, "Leader") {
		t.Fatalf("metrics with a client certificate: exit %d: %s", code, out)
	}
	env := map[string]string{"WALRUS_TLS_CA": user.CA, "WALRUS_TLS_CERT": user.Cert, "WALRUS_TLS_KEY": user.Key}
	if code, out := run(env, "--addr", addr, "status", "--addrs", addr); !strings.Contains(out, "Leader") {
		t.Fatalf("status with WALRUS_TLS_*: exit %d: %s", code, out)
	}
	if code, out := run(nil, "--addr", addr, "--tls-ca", user.CA, "--timeout", "2s", "metrics"); code == 0 {
		t.Fatalf("metrics without a client certificate succeeded: %s", out)
	}
	if code, out := run(nil, "--addr", addr, "--tls-cert", user.Cert, "metrics"); code != 2 || !strings.Contains(out, "--tls-") {
		t.Fatalf("--tls-cert without --tls-key: exit %d (want 2): %s", code, out)
	}
}
