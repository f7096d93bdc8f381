package mux

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"
)

func TestMuxRoutesByTag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := New(ln, nil, slog.New(slog.DiscardHandler))
	a, b := m.Listener(TagRaft), m.Listener(TagRPC)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = m.Serve(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	for _, tc := range []struct {
		tag byte
		l   net.Listener
		msg string
	}{{TagRaft, a, "raft"}, {TagRPC, b, "rpc"}} {
		dctx, dcancel := context.WithTimeout(t.Context(), 5*time.Second)
		c, err := Dial(dctx, ln.Addr().String(), tc.tag)
		dcancel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte(tc.msg)); err != nil {
			t.Fatal(err)
		}
		s, err := tc.l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(tc.msg))
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != tc.msg {
			t.Fatalf("got %q %v", buf, err)
		}
		_ = c.Close()
		_ = s.Close()
	}
	// Unknown tag: connection is closed by the mux.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte{'?'})
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("unknown tag connection was not closed")
	}
	_ = c.Close()
	cancel()
	if _, err := a.Accept(); err == nil {
		t.Fatal("Accept after close succeeded")
	}
}
