package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"
)

func startServer(t *testing.T, h Handler) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	s := NewServer(h, slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ctx, ln) }()
	return ln.Addr().String(), func() { cancel(); <-done }
}

func tcpDial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

func TestCallEchoAndErrors(t *testing.T) {
	addr, stop := startServer(t, HandlerFunc(func(ctx context.Context, m byte, p []byte) ([]byte, error) {
		if m == 2 {
			return nil, &Error{Code: 7, Message: "boom " + string(p)}
		}
		if m == 3 {
			return nil, errors.New("plain")
		}
		return append([]byte{m}, p...), nil
	}))
	defer stop()
	p := NewPool(tcpDial, slog.New(slog.DiscardHandler))
	defer p.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := []byte(fmt.Sprintf("msg-%d", i))
			got, err := p.Call(ctx, addr, 1, want)
			if err != nil || !bytes.Equal(got, append([]byte{1}, want...)) {
				errs <- fmt.Errorf("call %d: %q %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, err := p.Call(ctx, addr, 2, []byte("x"))
	var re *Error
	if !errors.As(err, &re) || re.Code != 7 || re.Message != "boom x" {
		t.Fatalf("err = %#v", err)
	}
	_, err = p.Call(ctx, addr, 3, nil)
	if !errors.As(err, &re) || re.Code != 0 || re.Message != "plain" {
		t.Fatalf("err = %#v", err)
	}
}

func TestRedialAfterServerRestart(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, m byte, p []byte) ([]byte, error) { return p, nil })
	addr, stop := startServer(t, h)
	p := NewPool(tcpDial, slog.New(slog.DiscardHandler))
	defer p.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := p.Call(ctx, addr, 1, []byte("a")); err != nil {
		t.Fatal(err)
	}
	stop()
	// The broken connection fails calls; once the server is back on the
	// same address, a later call redials.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot rebind %s: %v", addr, err)
	}
	sctx, scancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = NewServer(h, slog.New(slog.DiscardHandler)).Serve(sctx, ln) }()
	defer func() { scancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := p.Call(ctx, addr, 1, []byte("b"))
		if err == nil && string(got) == "b" {
			break
		}
		if !errors.Is(err, ErrConnLost) && err != nil && time.Now().After(deadline) {
			t.Fatalf("call after restart: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no successful call after restart")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGoAsyncAndExpiry(t *testing.T) {
	release := make(chan struct{})
	addr, stop := startServer(t, HandlerFunc(func(ctx context.Context, m byte, p []byte) ([]byte, error) {
		if m == 9 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return p, nil
	}))
	defer stop()
	defer close(release)
	p := NewPool(tcpDial, slog.New(slog.DiscardHandler))
	defer p.Close()
	got := make(chan error, 2)
	p.Go(t.Context(), addr, 1, []byte("x"), 5*time.Second, func(b []byte, err error) {
		if err == nil && string(b) != "x" {
			err = fmt.Errorf("payload %q", b)
		}
		got <- err
	})
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.Go(t.Context(), addr, 9, nil, 100*time.Millisecond, func(_ []byte, err error) { got <- err })
	select {
	case err := <-got:
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("expired after %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("async call never expired")
	}
}

// bytesEnc encodes a fixed payload; len is what EncodedLen announces
// (a frame-sized one is refused before AppendTo runs).
type bytesEnc struct {
	b   []byte
	len int
}

func (e bytesEnc) EncodedLen() int            { return e.len }
func (e bytesEnc) AppendTo(dst []byte) []byte { return append(dst, e.b...) }

// TestGoEncoded: a payload encoded into the send buffer arrives as if it
// had been passed as bytes, and one too large for a frame is refused
// before anything is sent.
func TestGoEncoded(t *testing.T) {
	addr, stop := startServer(t, HandlerFunc(func(ctx context.Context, m byte, p []byte) ([]byte, error) {
		return append([]byte{m}, p...), nil
	}))
	defer stop()
	p := NewPool(tcpDial, slog.New(slog.DiscardHandler))
	defer p.Close()
	type res struct {
		b   []byte
		err error
	}
	got := make(chan res, 2)
	cb := func(b []byte, err error) { got <- res{b, err} }
	p.GoEncoded(t.Context(), addr, 4, bytesEnc{b: []byte("hello"), len: 5}, 5*time.Second, cb)
	if r := <-got; r.err != nil || string(r.b) != "\x04hello" {
		t.Fatalf("got %q, %v", r.b, r.err)
	}
	p.GoEncoded(t.Context(), addr, 4, bytesEnc{len: MaxFrameBytes}, 5*time.Second, cb)
	if r := <-got; !errors.Is(r.err, ErrPayloadTooLarge) || errors.Is(r.err, ErrConnLost) {
		t.Fatalf("too large: %v", r.err)
	}
	// The connection still works.
	if b, err := p.Call(t.Context(), addr, 5, []byte("x")); err != nil || string(b) != "\x05x" {
		t.Fatalf("after refusal: %q, %v", b, err)
	}
}
