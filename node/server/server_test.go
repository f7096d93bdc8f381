package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/server"
)

// fakeHandler echoes PUT payloads back as "OK <payload>", answers GET with
// EMPTY, METRICS with JSON, and records the size of every batch.
type fakeHandler struct {
	mu      sync.Mutex
	batches []int
	panicOn string // a PUT payload that makes Handle panic
	short   bool   // return one reply too few
	block   chan struct{}
}

func (h *fakeHandler) Handle(ctx context.Context, reqs []protocol.Request) []protocol.Reply {
	h.mu.Lock()
	h.batches = append(h.batches, len(reqs))
	h.mu.Unlock()
	if h.block != nil {
		select {
		case <-h.block:
		case <-ctx.Done():
		}
	}
	out := make([]protocol.Reply, 0, len(reqs))
	for _, r := range reqs {
		switch r.Command {
		case protocol.CmdPut:
			if h.panicOn != "" && string(r.Payload) == h.panicOn {
				panic("boom")
			}
			out = append(out, protocol.Payload(r.Payload))
		case protocol.CmdGet:
			out = append(out, protocol.Empty())
		case protocol.CmdRegister:
			out = append(out, protocol.OK())
		case protocol.CmdMetrics:
			out = append(out, protocol.Raw([]byte(`{"id":1}`)))
		default:
			out = append(out, protocol.UnknownCommand(r.Command))
		}
	}
	if h.short && len(out) > 0 {
		out = out[:len(out)-1]
	}
	return out
}

func (h *fakeHandler) maxBatch() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := 0
	for _, b := range h.batches {
		m = max(m, b)
	}
	return m
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// start runs a server on a free loopback port and stops it at cleanup.
func start(t *testing.T, cfg server.Config, h server.Handler) (*server.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(cfg, h, testLogger(t))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(t.Context(), ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func frames(ss ...string) []byte {
	var b []byte
	for _, s := range ss {
		b = protocol.AppendFrame(b, []byte(s))
	}
	return b
}

func readReplies(t *testing.T, r *bufio.Reader, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for range n {
		f, err := protocol.ReadFrame(r, 0)
		if err != nil {
			t.Fatalf("after %d replies %q: %v", len(out), out, err)
		}
		out = append(out, string(f))
	}
	return out
}

// expectClosed asserts the server closes the connection (EOF) with no more
// replies.
func expectClosed(t *testing.T, r *bufio.Reader) {
	t.Helper()
	if f, err := protocol.ReadFrame(r, 0); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("want connection closed, got frame %q err %v", f, err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRequestsAnsweredInOrder(t *testing.T) {
	_, addr := start(t, server.Config{}, &fakeHandler{})
	c := dial(t, addr)
	r := bufio.NewReader(c)
	for i := range 20 {
		want := fmt.Sprintf("OK payload %d with  spaces", i)
		if _, err := c.Write(frames(fmt.Sprintf("put t payload %d with  spaces", i))); err != nil {
			t.Fatal(err)
		}
		if got := readReplies(t, r, 1)[0]; got != want {
			t.Fatalf("reply %q, want %q", got, want)
		}
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		want   []string
		closed bool // the server must close the connection after the replies
	}{
		{name: "zero length", in: append([]byte{0, 0, 0, 0}, frames("GET t")...), want: []string{"ERR invalid frame length"}, closed: true},
		{name: "valid then zero length", in: append(frames("GET t"), 0, 0, 0, 0), want: []string{"EMPTY", "ERR invalid frame length"}, closed: true},
		{name: "oversized", in: append([]byte{0xff, 0xff, 0xff, 0x7f}, frames("GET t")...), want: []string{"ERR invalid frame length"}, closed: true},
		{name: "valid then oversized", in: append(frames("GET t"), 0xff, 0xff, 0xff, 0x7f), want: []string{"EMPTY", "ERR invalid frame length"}, closed: true},
		{name: "invalid utf-8", in: frames("PUT t \xff\xfe", "GET t"), want: []string{"ERR invalid utf-8", "EMPTY"}},
		{name: "unknown command", in: frames("FROB x"), want: []string{"ERR unknown command FROB"}},
		{name: "missing topic", in: frames("REGISTER"), want: []string{"ERR REGISTER requires a topic (usage: REGISTER <topic>)"}},
		{name: "missing payload", in: frames("PUT t"), want: []string{"ERR PUT requires a payload (usage: PUT <topic> <payload>)"}},
		{name: "invalid topic", in: frames("GET a/b"), want: []string{`ERR invalid topic name: topic name "a/b" contains '/' (no '/', '\', NUL, control or space characters)`}},
		{name: "empty command", in: frames("  "), want: []string{"ERR empty command"}},
		{name: "seed health check length 7", in: []byte("\x07\x00\x00\x00METRICS"), want: []string{`{"id":1}`}},
		// Length 6 reads "METRIC"; the trailing "S" starts an incomplete
		// frame, which must not delay the reply.
		{name: "seed health check length 6", in: []byte("\x06\x00\x00\x00METRICS"), want: []string{"ERR unknown command METRIC"}},
		{name: "errors between valid requests keep order", in: frames("PUT t a", "GET", "PUT t b"), want: []string{"OK a", "ERR GET requires a topic (usage: GET <topic>)", "OK b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := server.Config{MaxFrameBytes: 1024}
			srv, addr := start(t, cfg, &fakeHandler{})
			c := dial(t, addr)
			if _, err := c.Write(tt.in); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(c)
			got := readReplies(t, r, len(tt.want))
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("reply %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
			if tt.closed {
				expectClosed(t, r)
				eventually(t, "connection released", func() bool { return srv.Conns() == 0 })
			}
			// The server still serves other clients.
			c2 := dial(t, addr)
			if _, err := c2.Write(frames("PUT t still-alive")); err != nil {
				t.Fatal(err)
			}
			if got := readReplies(t, bufio.NewReader(c2), 1)[0]; got != "OK still-alive" {
				t.Fatalf("after bad input: %q", got)
			}
		})
	}
}

func TestDisconnectMidFrame(t *testing.T) {
	srv, addr := start(t, server.Config{}, &fakeHandler{})
	for _, partial := range [][]byte{{5}, {5, 0, 0, 0, 'G', 'E'}} {
		c := dial(t, addr)
		if _, err := c.Write(partial); err != nil {
			t.Fatal(err)
		}
		eventually(t, "connection accepted", func() bool { return srv.Conns() >= 1 })
		c.Close()
		eventually(t, "connection released", func() bool { return srv.Conns() == 0 })
	}
}

func TestPipelinedRequestsAreBatched(t *testing.T) {
	// net.Pipe delivers a whole Write to one Read, so batching is
	// deterministic here.
	h := &fakeHandler{}
	ln := newPipeListener()
	srv := server.New(server.Config{MaxBatch: 100}, h, testLogger(t))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(t.Context(), ln) }()
	defer func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	c := ln.dial()
	defer c.Close()

	const n = 1000
	var in []byte
	for i := range n {
		in = protocol.AppendFrame(in, fmt.Appendf(nil, "PUT t %d", i))
	}
	werr := make(chan error, 1)
	go func() { _, err := c.Write(in); werr <- err }()
	r := bufio.NewReader(c)
	for i, got := range readReplies(t, r, n) {
		if want := fmt.Sprintf("OK %d", i); got != want {
			t.Fatalf("reply %d = %q, want %q", i, got, want)
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if m := h.maxBatch(); m < 2 || m > 100 {
		t.Fatalf("largest batch %d, want 2..100 (pipelined and capped by MaxBatch)", m)
	}
}

func TestBatchByteBudget(t *testing.T) {
	h := &fakeHandler{}
	ln := newPipeListener()
	srv := server.New(server.Config{MaxBatchBytes: 1000}, h, testLogger(t))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(t.Context(), ln) }()
	defer func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	c := ln.dial()
	defer c.Close()
	payload := strings.Repeat("x", 94) // 100-byte frames
	var in []byte
	for range 50 {
		in = protocol.AppendFrame(in, []byte("PUT t "+payload))
	}
	go func() { _, _ = c.Write(in) }() // replies checked below
	readReplies(t, bufio.NewReader(c), 50)
	if m := h.maxBatch(); m < 2 || m > 10 {
		t.Fatalf("largest batch %d requests, want 2..10 (1000-byte budget, 100-byte frames)", m)
	}
}

func TestPipeliningOverTCP(t *testing.T) {
	h := &fakeHandler{}
	_, addr := start(t, server.Config{}, h)
	c := dial(t, addr)
	const n = 1000
	var in []byte
	for i := range n {
		in = protocol.AppendFrame(in, fmt.Appendf(nil, "PUT t %d", i))
	}
	go func() { _, _ = c.Write(in) }() // the replies are checked below
	for i, got := range readReplies(t, bufio.NewReader(c), n) {
		if want := fmt.Sprintf("OK %d", i); got != want {
			t.Fatalf("reply %d = %q, want %q", i, got, want)
		}
	}
}

func TestHandlerPanicAndShortReplies(t *testing.T) {
	_, addr := start(t, server.Config{}, &fakeHandler{panicOn: "bad"})
	c := dial(t, addr)
	r := bufio.NewReader(c)
	c.Write(frames("PUT t bad"))
	if got := readReplies(t, r, 1)[0]; got != "ERR internal error" {
		t.Fatalf("panic reply %q", got)
	}
	c.Write(frames("PUT t good"))
	if got := readReplies(t, r, 1)[0]; got != "OK good" {
		t.Fatalf("after panic %q", got)
	}

	_, addr2 := start(t, server.Config{}, &fakeHandler{short: true})
	c2 := dial(t, addr2)
	c2.Write(frames("PUT t x"))
	if got := readReplies(t, bufio.NewReader(c2), 1)[0]; got != "ERR internal error" {
		t.Fatalf("missing reply %q", got)
	}
}

func TestMaxConns(t *testing.T) {
	srv, addr := start(t, server.Config{MaxConns: 2}, &fakeHandler{})
	a, b := dial(t, addr), dial(t, addr)
	eventually(t, "two connections", func() bool { return srv.Conns() == 2 })
	c := dial(t, addr)
	r := bufio.NewReader(c)
	if got := readReplies(t, r, 1)[0]; got != "ERR too many connections (max 2)" {
		t.Fatalf("third connection got %q", got)
	}
	expectClosed(t, r)
	a.Close()
	b.Close()
	eventually(t, "slots released", func() bool { return srv.Conns() == 0 })
	d := dial(t, addr)
	d.Write(frames("GET t"))
	if got := readReplies(t, bufio.NewReader(d), 1)[0]; got != "EMPTY" {
		t.Fatalf("after release %q", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	srv, addr := start(t, server.Config{IdleTimeout: 100 * time.Millisecond}, &fakeHandler{})
	c := dial(t, addr)
	r := bufio.NewReader(c)
	c.Write(frames("GET t"))
	readReplies(t, r, 1)
	expectClosed(t, r) // the read deadline of dial is 10s; idle closes well before
	eventually(t, "connection released", func() bool { return srv.Conns() == 0 })
}

func TestCloseInterruptsHandlerAndConnections(t *testing.T) {
	h := &fakeHandler{block: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{}, h, testLogger(t))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	c := dial(t, ln.Addr().String())
	c.Write(frames("GET t"))
	eventually(t, "handler called", func() bool { return h.maxBatch() == 1 })
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if srv.Conns() != 0 {
		t.Fatalf("%d connections left", srv.Conns())
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(context.Background(), ln2); !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve after Close = %v", err)
	}
}

func TestServeStopsOnContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{}, &fakeHandler{}, testLogger(t))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after ctx cancel")
	}
}

func TestManyConcurrentConnections(t *testing.T) {
	_, addr := start(t, server.Config{MaxBatch: 8}, &fakeHandler{})
	const conns, perConn = 32, 100
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			r := bufio.NewReader(c)
			var in []byte
			for j := range perConn {
				in = protocol.AppendFrame(in, fmt.Appendf(nil, "PUT t c%d-%d", i, j))
			}
			if _, err := c.Write(in); err != nil {
				errs <- err
				return
			}
			for j := range perConn {
				f, err := protocol.ReadFrame(r, 0)
				if err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf("OK c%d-%d", i, j); string(f) != want {
					errs <- fmt.Errorf("conn %d reply %d = %q, want %q", i, j, f, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := server.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (server.Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	err := server.Config{MaxBatch: -1, MaxFrameBytes: server.MaxFrameBytesMax + 1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "max_batch") || !strings.Contains(err.Error(), "max_frame_bytes") {
		t.Fatalf("Validate = %v", err)
	}
}

// pipeListener hands out net.Pipe connections.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) dial() net.Conn {
	a, b := net.Pipe()
	select {
	case l.conns <- b:
	case <-l.closed:
	}
	return a
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// TestErrorReplySurvivesUnreadInput: the client keeps sending after a bad
// length prefix; the server must still deliver "ERR invalid frame length"
// and hang up without wedging. (Closing a socket with unread input resets
// it, which can destroy the reply on some stacks; Linux loopback keeps it,
// so this checks the behaviour, not lingeringClose specifically.)
func TestErrorReplySurvivesUnreadInput(t *testing.T) {
	_, addr := start(t, server.Config{MaxFrameBytes: 1024}, &fakeHandler{})
	for range 5 {
		c := dial(t, addr)
		junk := make([]byte, 4<<20)
		copy(junk, []byte{0xff, 0xff, 0xff, 0x7f})
		go func() { _, _ = c.Write(junk) }() // fails once the server hangs up
		f, err := protocol.ReadFrame(bufio.NewReader(c), 0)
		if err != nil || string(f) != "ERR invalid frame length" {
			t.Fatalf("got %q, %v; want ERR invalid frame length", f, err)
		}
		c.Close()
	}
}

// TestPayloadsAreNotReused: a handler may keep the payloads it was given
// (node/router appends and forwards them without copying): later batches
// on the connection leave them intact.
func TestPayloadsAreNotReused(t *testing.T) {
	var (
		mu   sync.Mutex
		kept [][]byte
	)
	_, addr := start(t, server.DefaultConfig(), server.HandlerFunc(func(_ context.Context, reqs []protocol.Request) []protocol.Reply {
		replies := make([]protocol.Reply, len(reqs))
		mu.Lock()
		for i, q := range reqs {
			kept = append(kept, q.Payload)
			replies[i] = protocol.OK()
		}
		mu.Unlock()
		return replies
	}))
	c := dial(t, addr)
	r := bufio.NewReader(c)
	const batches, per = 20, 50
	for b := range batches {
		var ss []string
		for i := range per {
			ss = append(ss, fmt.Sprintf("PUT t %06d", b*per+i))
		}
		if _, err := c.Write(frames(ss...)); err != nil {
			t.Fatal(err)
		}
		readReplies(t, r, per)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(kept) != batches*per {
		t.Fatalf("kept %d payloads", len(kept))
	}
	for i, p := range kept {
		if want := fmt.Sprintf("%06d", i); string(p) != want {
			t.Fatalf("payload %d = %q, want %q: its memory was reused", i, p, want)
		}
	}
}
