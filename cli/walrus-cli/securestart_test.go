package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// TestSecureQuickStart runs README's "Security" walk-through: make the
// certificates with scripts/make-certs.sh, start configs/secure/node{1,2,3}.yaml
// with scripts/cluster-up.sh (mutual TLS between the nodes, TLS on the
// client and HTTP ports), then put, get, status and bench over TLS, the
// openssl s_client health check, HTTPS /healthz and /metrics, a plaintext
// client refused, and a certificate rotation picked up on SIGHUP. Like
// TestQuickStart it works on a copy of the layout and skips when the fixed
// ports are busy (the two never run at once: neither is parallel).
func TestSecureQuickStart(t *testing.T) {
	needCluster(t)
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl missing under CI=true (.ci/run installs it)")
		}
		t.Skip("openssl not installed (scripts/make-certs.sh needs it)")
	}
	for _, p := range quickStartPorts {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Skipf("port %d is busy (%v)", p, err)
		}
		ln.Close()
	}
	root, err := testcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "configs", "secure"), 0o755); err != nil {
		t.Fatal(err)
	}
	var configs []string
	for i := 1; i <= 3; i++ {
		name := filepath.Join("configs", "secure", fmt.Sprintf("node%d.yaml", i))
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		configs = append(configs, name)
	}
	env := append(cleanEnv(), "WALRUS_ROOT="+work, "BIN="+binDir, "NO_BUILD=1", "UP_TIMEOUT=60", "DOWN_TIMEOUT=20",
		"CONFIGS="+strings.Join(configs, " "), "WALRUS_TLS_CA=certs/ca.crt")
	script := func(name string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", name))
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	if out, err := script("make-certs.sh"); err != nil {
		t.Fatalf("make-certs.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := script("cluster-down.sh"); err != nil {
			t.Errorf("cleanup cluster-down.sh: %v\n%s", err, out)
		}
	})
	if out, err := script("cluster-up.sh"); err != nil {
		for _, n := range []string{"node1", "node2", "node3"} {
			t.Logf("%s log:\n%s", n, testcluster.Tail(filepath.Join(work, ".cluster", "logs", n+".log"), 30))
		}
		t.Fatalf("cluster-up.sh: %v\n%s", err, out)
	}

	ca := filepath.Join(work, "certs", "ca.crt")
	stamp := fmt.Sprint(time.Now().Unix())
	expect(t, cli(t, "--tls-ca", ca, "--addr", "127.0.0.1:9091", "put", "health-check", stamp), 0, "OK\n")
	expect(t, cli(t, "--tls-ca", ca, "--addr", "127.0.0.1:9092", "get", "health-check"), 0, stamp+"\n")
	if r := cli(t, "--tls-ca", ca, "status", "--addrs", "127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093"); r.code != 0 {
		t.Fatalf("status over TLS: %s", r)
	}
	if r := cli(t, "--tls-ca", ca, "--addr", "127.0.0.1:9091", "bench", "produce", "--messages", "300", "--clients", "2", "--topics", "1"); r.code != 0 {
		t.Fatalf("bench produce over TLS: %s", r)
	}
	// The same environment variable the scripts use works for walrus-cli.
	if r := cliWith(t, runOpts{env: []string{"WALRUS_TLS_CA=" + ca}}, "--addr", "127.0.0.1:9093", "metrics"); r.code != 0 {
		t.Fatalf("metrics with WALRUS_TLS_CA: %s", r)
	}
	// A plaintext client is refused and gets no reply.
	if r := cli(t, "--addr", "127.0.0.1:9091", "--timeout", "3s", "put", "plaintext", "x"); r.code == 0 || r.stdout != "" {
		t.Fatalf("plaintext put on a TLS port: %s", r)
	}
	if r := cli(t, "--tls-ca", ca, "--addr", "127.0.0.1:9091", "offsets", "plaintext"); r.code == 0 {
		t.Fatalf("the plaintext put created its topic: %s", r)
	}

	// README's openssl s_client health check.
	line := `printf '\x07\x00\x00\x00METRICS' | openssl s_client -connect 127.0.0.1:9091 -CAfile certs/ca.crt -verify_return_error -quiet`
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	cmd := exec.CommandContext(ctx, "bash", "-c", line)
	cmd.Dir, cmd.WaitDelay = work, time.Second
	out, _ := cmd.Output()
	cancel()
	if !bytes.Contains(out, []byte(`"state"`)) {
		t.Fatalf("%s: got %q, want a framed METRICS reply", line, out)
	}

	// HTTPS on the metrics port.
	pool := x509.NewCertPool()
	pemCA, err := os.ReadFile(ca)
	if err != nil || !pool.AppendCertsFromPEM(pemCA) {
		t.Fatalf("read %s: %v", ca, err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	get := func(url string) string {
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", url, resp.Status, b)
		}
		return string(b)
	}
	if body := get("https://127.0.0.1:9101/healthz"); body != "ok\n" {
		t.Fatalf("/healthz = %q", body)
	}
	if curl, err := exec.LookPath("curl"); err == nil {
		cmd := exec.CommandContext(t.Context(), curl, "-sS", "--max-time", "5", "--cacert", "certs/ca.crt", "https://127.0.0.1:9101/healthz")
		cmd.Dir = work
		if out, err := cmd.Output(); err != nil || string(out) != "ok\n" {
			t.Fatalf("curl /healthz: %q %v", out, err)
		}
	}
	if body := get("https://127.0.0.1:9101/metrics"); !strings.Contains(body, `walrus_tls_cert_expiry_timestamp_seconds{listener="cluster"`) {
		t.Fatal("/metrics lacks the cluster certificate expiry")
	}

	// Rotation: new leaves, SIGHUP to node 1; new handshakes see the new
	// certificate and the node keeps serving.
	if out, err := script("make-certs.sh"); err != nil {
		t.Fatalf("make-certs.sh (rotation): %v\n%s", err, out)
	}
	rotated := serialOf(t, filepath.Join(work, "certs", "node1.crt"))
	pidB, err := os.ReadFile(filepath.Join(work, ".cluster", "pids", "node1.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(pidB), &pid); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(work, ".cluster", "logs", "node1.log")
	testcluster.Eventually(t, 15*time.Second, func() error {
		b, _ := os.ReadFile(logFile)
		if !bytes.Contains(b, []byte("SIGHUP: TLS files reloaded")) {
			return fmt.Errorf("node 1 did not log the SIGHUP reload")
		}
		conn, err := tls.Dial("tcp", "127.0.0.1:9091", &tls.Config{RootCAs: pool})
		if err != nil {
			return err
		}
		defer conn.Close()
		if got := conn.ConnectionState().PeerCertificates[0].SerialNumber.String(); got != rotated {
			return fmt.Errorf("node 1 serves serial %s, want %s", got, rotated)
		}
		return nil
	})
	expect(t, cli(t, "--tls-ca", ca, "--addr", "127.0.0.1:9091", "put", "health-check", "rotated"), 0, "OK\n")

	if out, err := script("cluster-down.sh"); err != nil || !strings.Contains(out, "3 node(s) stopped") {
		t.Fatalf("cluster-down.sh: %v\n%s", err, out)
	}
	if out, err := script("cluster-wipe.sh"); err != nil {
		t.Fatalf("cluster-wipe.sh: %v\n%s", err, out)
	}
}

func serialOf(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}
