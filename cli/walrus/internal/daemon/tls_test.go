package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/configs"
	"github.com/walrus-go/walrus/node/tlsconf"
)

func TestNodeConfigMapsTLS(t *testing.T) {
	c := configs.Default()
	c.TLS = configs.TLSConfig{CertFile: "c.crt", KeyFile: "c.key", ClientCAFile: "clients.crt"}
	c.ClusterTLS = configs.ClusterTLSConfig{CertFile: "p.crt", KeyFile: "p.key", CAFile: "cluster.crt"}
	n := NodeConfig(c)
	if n.TLS != (tlsconf.Files{CertFile: "c.crt", KeyFile: "c.key", CAFile: "clients.crt"}) ||
		n.ClusterTLS != (tlsconf.Files{CertFile: "p.crt", KeyFile: "p.key", CAFile: "cluster.crt"}) {
		t.Fatalf("TLS = %+v, ClusterTLS = %+v", n.TLS, n.ClusterTLS)
	}
	if d := NodeConfig(configs.Default()); d.TLS.Enabled() || d.ClusterTLS.Enabled() {
		t.Fatal("the default config turns TLS on")
	}
}

// TestRunRejectsBadTLSFiles: a node does not start on a certificate file
// it cannot use, and the error names the file.
func TestRunRejectsBadTLSFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "node.crt")
	if err := os.WriteFile(bad, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := configs.Default()
	c.DataDir = dir
	// The node loads its TLS files before it binds, so these ports are
	// never opened.
	c.Raft.Port, c.Client.Port = 65001, 65002
	c.TLS = configs.TLSConfig{CertFile: bad, KeyFile: bad}
	var stderr bytes.Buffer
	err := Run(t.Context(), c, &stderr)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("Run with a bad certificate: %v", err)
	}
}

// TestReloadOnHUP: SIGHUP calls the reload (and does not end the
// process); stop ends the goroutine and the signal handling.
func TestReloadOnHUP(t *testing.T) {
	calls := make(chan struct{}, 4)
	stop := reloadOnHUP(func() error { calls <- struct{}{}; return nil }, testLogger(t))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	select {
	case <-calls:
	case <-ctx.Done():
		t.Fatal("SIGHUP did not reach the reload")
	}
	stop()
}
