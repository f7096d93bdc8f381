package daemon

import (
	"bytes"
	"context"
	"errors"
	"net"
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
	ports := testcluster.FreePorts(t, 2)
	h, err := auth.HashPassword("daemon-secret")
	if err != nil {
		t.Fatal(err)
	}
	c := configs.Default()
	c.DataDir = t.TempDir()
	c.Raft.Port, c.Client.Port = ports[0], ports[1]
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
