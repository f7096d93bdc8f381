package mux

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
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

// countConn counts the payload bytes written through a wrapped connection.
type countConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func TestMuxConnWrapperSeesPayloadNotTag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := New(ln, nil, slog.New(slog.DiscardHandler))
	var written atomic.Int64
	m.SetConnWrapper(func(c net.Conn) net.Conn { return countConn{Conn: c, n: &written} })
	l := m.Listener(TagRPC)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = m.Serve(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	dctx, dcancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer dcancel()
	c, err := m.Dial(dctx, ln.Addr().String(), TagRPC)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("got %q %v", buf, err)
	}
	if _, err := s.Write([]byte("pong!")); err != nil {
		t.Fatal(err)
	}
	// Dialed side wrote 4 payload bytes (tag excluded), accepted side 5.
	if got := written.Load(); got != 9 {
		t.Fatalf("wrapper counted %d written bytes, want 9 (tag byte must not be counted)", got)
	}
}
