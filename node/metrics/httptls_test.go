package metrics

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcerts"
	"github.com/walrus-go/walrus/node/tlsconf"
)

// TestHTTPServerTLS: with SetTLS the endpoint speaks HTTPS only, and
// with a client CA it answers only clients holding a certificate from it.
func TestHTTPServerTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	f := testcerts.WriteFiles(t, t.TempDir(), "node", ca, ca.Localhost(t, "node"))
	src, err := tlsconf.NewSource("http", tlsconf.Files{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA}, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer("127.0.0.1:0", New(1), nil, nil)
	srv.SetTLS(src.ServerConfig())
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })

	do := func(url string, cfg *tls.Config) (int, error) {
		tr := &http.Transport{TLSClientConfig: cfg}
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	user := ca.Issue(t, testcerts.LeafOptions{CommonName: "prometheus"}).TLSCertificate(t)
	if code, err := do("https://"+srv.Addr()+"/healthz", &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{user}}); err != nil || code != http.StatusOK {
		t.Fatalf("HTTPS with a client certificate: %d %v", code, err)
	}
	if _, err := do("https://"+srv.Addr()+"/metrics", &tls.Config{RootCAs: ca.Pool()}); err == nil {
		t.Fatal("HTTPS without a client certificate was answered")
	}
	// Plain HTTP gets net/http's 400 for HTTP-on-HTTPS at most, never a page.
	if code, err := do("http://"+srv.Addr()+"/metrics", nil); err == nil && code == http.StatusOK {
		t.Fatal("plain HTTP was served")
	}
}
