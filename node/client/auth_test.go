package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/auth"
	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/server"
)

// The client authenticates on Dial and again on the connection it opens
// after the server closed the idle one.
func TestAuthOnDialAndRedial(t *testing.T) {
	h, _ := auth.HashPassword("pw")
	store, err := auth.NewStore([]auth.User{{Name: "alice", PasswordHash: h}})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu         sync.Mutex
		principals []string
	)
	handler := server.HandlerFunc(func(ctx context.Context, reqs []protocol.Request) []protocol.Reply {
		mu.Lock()
		principals = append(principals, auth.Principal(ctx))
		mu.Unlock()
		out := make([]protocol.Reply, len(reqs))
		for i := range out {
			out[i] = protocol.OK()
		}
		return out
	})
	srv, addr := startServerConfig(t, server.Config{Auth: store, IdleTimeout: 50 * time.Millisecond}, handler)
	if _, err := client.Dial(t.Context(), addr, client.Options{User: "alice", Password: "bad"}); !errors.Is(err, client.ErrAuth) {
		t.Fatalf("wrong password: %v", err)
	}
	c := dial(t, addr, client.Options{User: "alice", Password: "pw"})
	if err := c.Put(t.Context(), "t", []byte("one")); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Conns() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("server did not close the idle connection")
		}
		<-tick.C
	}
	// Wait until the client treats its connection as stale (idle over
	// 200ms), so the next call redials instead of failing on the old one.
	for stale := time.Now().Add(250 * time.Millisecond); time.Now().Before(stale); {
		<-tick.C
	}
	if err := c.Put(t.Context(), "t", []byte("two")); err != nil {
		t.Fatalf("Put after redial: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(principals) != 2 || principals[0] != "alice" || principals[1] != "alice" {
		t.Fatalf("principals %v", principals)
	}
}
