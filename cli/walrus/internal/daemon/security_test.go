package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/configs"
	"github.com/walrus-go/walrus/internal/testcluster"
	"github.com/walrus-go/walrus/node/auth"
)

// TestRunWithUsersAndACLs: the users and acls keys reach the client
// listener: AUTH is required, ACLs apply, and the password is not logged.
func TestRunWithUsersAndACLs(t *testing.T) {
	ports := testcluster.FreePorts(t, 3)
	h, err := auth.HashPassword("daemon-secret")
	if err != nil {
		t.Fatal(err)
	}
	c := configs.Default()
	c.DataDir = t.TempDir()
	c.Raft.Port, c.Client.Port, c.HTTP.Port = ports[0], ports[1], ports[2]
	c.Security.MetricsAuth = true
	c.Log.File = filepath.Join(t.TempDir(), "walrus.log")
	c.Log.Level = "debug"
	c.Users = []configs.UserConfig{{Name: "app", PasswordHash: h}}
	c.ACLs = []configs.ACLConfig{{Principal: "app", Resource: "app-*", Operations: []string{"write", "create"}}}
	addr := net.JoinHostPort("127.0.0.1", itoa(ports[1]))

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, os.Stderr) }()
	testcluster.Eventually(t, 30*time.Second, func() error {
		conn, err := testcluster.Dial(ctx, addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		for _, step := range []struct{ line, want string }{
			{"PUT app-x 1", "ERR authentication required: send AUTH <user> <password> first"},
			{"AUTH app wrong-secret", "ERR authentication failed: check the user name and password"},
			{"AUTH app daemon-secret", "OK"},
			{"PUT app-x 1", "OK"},
			{"PUT other 1", "ERR not authorized: app may not write topic:other"},
		} {
			r, err := conn.Do(step.line)
			if err != nil {
				return err
			}
			if r != step.want {
				return errors.New(step.line + ": " + r)
			}
		}
		return nil
	})
	metricsURL := "http://" + net.JoinHostPort("127.0.0.1", itoa(ports[2])) + "/metrics"
	scrape := func(user, pass string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := scrape("", ""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without basic auth: %d", code)
	}
	code, body := scrape("app", "daemon-secret")
	counted := false
	for line := range strings.SplitSeq(body, "\n") {
		counted = counted || strings.HasPrefix(line, `walrus_auth_failures_total{listener="client"`) && strings.HasSuffix(line, `reason="bad_password"} 1`)
	}
	if code != http.StatusOK || !counted {
		t.Fatalf("/metrics with basic auth: %d\n%.2000s", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	b, _ := os.ReadFile(c.Log.File)
	if strings.Contains(string(b), "secret") {
		t.Fatalf("a password reached the log:\n%s", b)
	}
	if !strings.Contains(string(b), "client authentication failed") {
		t.Fatalf("the failed AUTH was not logged:\n%s", b)
	}
}

func TestRunRefusesExposedListener(t *testing.T) {
	c := configs.Default()
	c.DataDir = t.TempDir()
	c.Client.Host = "0.0.0.0"
	err := Run(t.Context(), c, &bytes.Buffer{})
	if !errors.Is(err, configs.ErrInvalid) || !strings.Contains(err.Error(), "security.insecure: true") {
		t.Fatalf("Run = %v", err)
	}
}
