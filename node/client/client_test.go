package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/server"
	"github.com/walrus-go/walrus/node/server/servertest"
)

// memHandler is a tiny in-memory node: PUT appends, GET pops in order,
// STATE and METRICS return JSON, unknown commands are ERR.
type memHandler struct {
	mu     sync.Mutex
	topics map[string][][]byte
}

func (h *memHandler) Handle(_ context.Context, reqs []protocol.Request) []protocol.Reply {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.topics == nil {
		h.topics = map[string][][]byte{}
	}
	out := make([]protocol.Reply, len(reqs))
	for i, r := range reqs {
		switch r.Command {
		case protocol.CmdRegister:
			if _, ok := h.topics[r.Topic]; !ok {
				h.topics[r.Topic] = nil
			}
			out[i] = protocol.OK()
		case protocol.CmdPut:
			h.topics[r.Topic] = append(h.topics[r.Topic], bytes.Clone(r.Payload))
			out[i] = protocol.OK()
		case protocol.CmdGet:
			q := h.topics[r.Topic]
			if len(q) == 0 {
				out[i] = protocol.Empty()
				continue
			}
			out[i] = protocol.Payload(q[0])
			h.topics[r.Topic] = q[1:]
		case protocol.CmdState:
			if _, ok := h.topics[r.Topic]; !ok {
				out[i] = protocol.Errf("unknown topic %s", r.Topic)
				continue
			}
			out[i] = protocol.Raw(fmt.Appendf(nil, `{"topic":%q,"pending":%d}`, r.Topic, len(h.topics[r.Topic])))
		case protocol.CmdMetrics:
			out[i] = protocol.Raw([]byte(`{"id":1,"state":"Leader"}`))
		default:
			out[i] = protocol.UnknownCommand(r.Command)
		}
	}
	return out
}

func startServer(t testing.TB, h server.Handler) string {
	t.Helper()
	_, addr := startServerConfig(t, server.Config{}, h)
	return addr
}

func startServerConfig(t testing.TB, cfg server.Config, h server.Handler) (*server.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(cfg, h, nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		srv.Close()
		// ErrServerClosed: Close ran before Serve started (a busy machine).
		if err := <-done; err != nil && !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, ln.Addr().String()
}

func dial(t testing.TB, addr string, opts client.Options) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCommands(t *testing.T) {
	ctx := t.Context()
	c := dial(t, startServer(t, &memHandler{}), client.Options{})
	if err := c.Register(ctx, "logs"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"hello world", " spaced  out \n", "🦭"} {
		if err := c.Put(ctx, "logs", []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"hello world", " spaced  out \n", "🦭"} {
		got, ok, err := c.Get(ctx, "logs")
		if err != nil || !ok || string(got) != want {
			t.Fatalf("Get = %q %v %v, want %q", got, ok, err, want)
		}
	}
	if got, ok, err := c.Get(ctx, "logs"); err != nil || ok || got != nil {
		t.Fatalf("Get on drained topic = %q %v %v", got, ok, err)
	}
	st, err := c.State(ctx, "logs")
	if err != nil {
		t.Fatal(err)
	}
	var state struct{ Topic string }
	if err := json.Unmarshal(st, &state); err != nil || state.Topic != "logs" {
		t.Fatalf("State = %s, %v", st, err)
	}
	m, err := c.Metrics(ctx)
	if err != nil || !json.Valid(m) {
		t.Fatalf("Metrics = %s, %v", m, err)
	}
}

func TestServerErrors(t *testing.T) {
	ctx := t.Context()
	c := dial(t, startServer(t, &memHandler{}), client.Options{})
	_, err := c.State(ctx, "nope")
	var se *client.ServerError
	if !errors.As(err, &se) || se.Message != "unknown topic nope" || err.Error() != "ERR unknown topic nope" {
		t.Fatalf("State(unknown) = %v", err)
	}
	r, err := c.DoLine(ctx, "frob it")
	if !errors.As(err, &se) || se.Message != "unknown command FROB" || r.Kind != protocol.ReplyErr {
		t.Fatalf("DoLine(frob) = %v %v", r, err)
	}
	// Typed calls validate locally: a space in a topic must not turn into
	// a PUT of a different topic and payload.
	if err := c.Put(ctx, "two words", []byte("x")); !errors.Is(err, protocol.ErrInvalidTopic) || errors.As(err, &se) {
		t.Fatalf("Put(bad topic) = %v", err)
	}
	if err := c.Put(ctx, "t", nil); !errors.Is(err, protocol.ErrUsage) {
		t.Fatalf("Put(empty payload) = %v", err)
	}
	if _, err := c.Pipeline(ctx, []protocol.Request{{Command: protocol.CmdGet, Topic: "ok"}, {Command: "get", Topic: "t"}}); !errors.Is(err, protocol.ErrUsage) {
		t.Fatalf("Pipeline(lower-case command) = %v", err)
	}
	if err := c.Send(protocol.Request{Command: protocol.CmdGet}); !errors.Is(err, protocol.ErrUsage) || c.Pending() != 0 {
		t.Fatalf("Send(GET without topic) = %v, pending %d", err, c.Pending())
	}
	// DoLine sends what was typed, so the shell shows the node's message.
	if _, err := c.DoLine(ctx, "PUT bad/topic x"); !errors.As(err, &se) || !strings.HasPrefix(se.Message, "invalid topic name") {
		t.Fatalf("DoLine(bad topic) = %v", err)
	}
	if _, err := c.DoLine(ctx, ""); !errors.Is(err, protocol.ErrFrameLength) {
		t.Fatalf("DoLine(empty) = %v", err)
	}
	// Still usable after ERR replies.
	if r, err := c.DoLine(ctx, "metrics"); err != nil || r.Kind != protocol.ReplyRaw {
		t.Fatalf("DoLine(metrics) = %v %v", r, err)
	}
}

func TestDialErrorNamesAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = client.Dial(t.Context(), addr, client.Options{Timeout: 2 * time.Second})
	var ce *client.ConnError
	if !errors.As(err, &ce) || ce.Addr != addr || !strings.Contains(err.Error(), addr) || ce.Op != "dial" {
		t.Fatalf("Dial(closed port) = %v", err)
	}
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

func TestTimeoutBreaksClient(t *testing.T) {
	addr := silentServer(t)
	c := dial(t, addr, client.Options{Timeout: 50 * time.Millisecond})
	_, err := c.Metrics(t.Context())
	var ce *client.ConnError
	if !errors.As(err, &ce) || !ce.Timeout() || ce.Addr != addr {
		t.Fatalf("Metrics against a silent server = %v", err)
	}
	// The late reply could be mistaken for the next one, so the client
	// refuses further use.
	if _, err2 := c.Metrics(t.Context()); !errors.Is(err2, ce) && err2.Error() != err.Error() {
		t.Fatalf("second call = %v, want the sticky %v", err2, err)
	}
}

func TestContextCancelInterrupts(t *testing.T) {
	c := dial(t, silentServer(t), client.Options{Timeout: -1})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := c.Metrics(ctx); done <- err }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not interrupt the call")
	}
}

func TestClosedClient(t *testing.T) {
	c := dial(t, startServer(t, &memHandler{}), client.Options{})
	c.Close()
	if err := c.Put(t.Context(), "t", []byte("x")); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Put after Close = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestPipeline(t *testing.T) {
	ctx := t.Context()
	c := dial(t, startServer(t, &memHandler{}), client.Options{})
	var reqs []protocol.Request
	for i := range 500 {
		reqs = append(reqs, protocol.Request{Command: protocol.CmdPut, Topic: "p", Payload: fmt.Appendf(nil, "m%d", i)})
	}
	reqs = append(reqs, protocol.Request{Command: "NOPE"})
	for range 501 {
		reqs = append(reqs, protocol.Request{Command: protocol.CmdGet, Topic: "p"})
	}
	replies, err := c.Pipeline(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) != len(reqs) {
		t.Fatalf("%d replies for %d requests", len(replies), len(reqs))
	}
	for i := range 500 {
		if replies[i].Kind != protocol.ReplyOK {
			t.Fatalf("PUT %d: %v", i, replies[i])
		}
		if got, want := string(replies[501+i].Body), fmt.Sprintf("m%d", i); replies[501+i].Kind != protocol.ReplyPayload || got != want {
			t.Fatalf("GET %d = %v %q, want %q", i, replies[501+i].Kind, got, want)
		}
	}
	if replies[500].Kind != protocol.ReplyErr || replies[len(replies)-1].Kind != protocol.ReplyEmpty {
		t.Fatalf("ERR / EMPTY replies: %v %v", replies[500], replies[len(replies)-1])
	}
}

// TestStreaming keeps a window of requests in flight with Send on one
// goroutine and Recv on another, the load generator's pattern.
func TestStreaming(t *testing.T) {
	e, err := servertest.NewEcho()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c := dial(t, e.Addr(), client.Options{})
	const n, window = 5000, 64
	sem := make(chan struct{}, window)
	errs := make(chan error, 2)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		put := protocol.Request{Command: protocol.CmdPut, Topic: "s", Payload: bytes.Repeat([]byte("x"), 100)}
		for i := range n {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			if err := c.Send(put); err != nil {
				errs <- err
				return
			}
			// Flush when the window is full or the burst ends.
			if len(sem) == window || i == n-1 {
				if err := c.Flush(); err != nil {
					errs <- err
					return
				}
			}
		}
	})
	wg.Go(func() {
		for range n {
			r, err := c.Recv(ctx)
			if err == nil && r.Kind != protocol.ReplyOK {
				err = fmt.Errorf("reply %v", r)
			}
			if err != nil {
				errs <- err
				cancel() // unblock the sender
				return
			}
			<-sem
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if e.Puts() != n {
		t.Fatalf("echo saw %d PUTs, want %d", e.Puts(), n)
	}
	if c.Pending() != 0 {
		t.Fatalf("Pending = %d after draining", c.Pending())
	}
	// Synchronous calls work again once the stream is drained.
	if payload, ok, err := c.Get(t.Context(), "s"); err != nil || !ok || len(payload) != servertest.EchoPayloadBytes {
		t.Fatalf("Get = %q %v %v", payload, ok, err)
	}
}

func TestConcurrentSyncCalls(t *testing.T) {
	h := &memHandler{}
	c := dial(t, startServer(t, h), client.Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if err := c.Put(t.Context(), fmt.Sprintf("g%d", g), fmt.Appendf(nil, "%d", i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for g := range 8 {
		for i := range 50 {
			got, ok, err := c.Get(t.Context(), fmt.Sprintf("g%d", g))
			if err != nil || !ok || string(got) != fmt.Sprint(i) {
				t.Fatalf("g%d #%d = %q %v %v", g, i, got, ok, err)
			}
		}
	}
}

func TestLargePayload(t *testing.T) {
	c := dial(t, startServer(t, &memHandler{}), client.Options{})
	big := bytes.Repeat([]byte("abcdefgh"), (1<<20)/8) // exactly 1 MiB
	if err := c.Put(t.Context(), "big", big); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get(t.Context(), "big")
	if err != nil || !ok || !bytes.Equal(got, big) {
		t.Fatalf("1 MiB round trip: ok=%v err=%v len=%d", ok, err, len(got))
	}
}

func TestRedialsAfterServerClosedIdleConnection(t *testing.T) {
	srv, addr := startServerConfig(t, server.Config{IdleTimeout: 50 * time.Millisecond}, &memHandler{})
	c := dial(t, addr, client.Options{})
	if err := c.Put(t.Context(), "t", []byte("one")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.Conns() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("server did not close the idle connection")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(250 * time.Millisecond) // let the client's staleness window pass (staleAfter = 200ms)
	if err := c.Put(t.Context(), "t", []byte("two")); err != nil {
		t.Fatalf("Put after the server closed the idle connection: %v", err)
	}
}

// TestLargePipeline sends far more than the socket buffers hold in one
// Pipeline call, with replies as big as the requests, which deadlocks a
// client that writes everything before reading.
func TestLargePipeline(t *testing.T) {
	c := dial(t, startServer(t, &memHandler{}), client.Options{})
	payload := bytes.Repeat([]byte("p"), 4096)
	const n = 4000 // ~16 MiB each way
	reqs := make([]protocol.Request, 0, 2*n)
	for range n {
		reqs = append(reqs,
			protocol.Request{Command: protocol.CmdPut, Topic: "big", Payload: payload},
			protocol.Request{Command: protocol.CmdGet, Topic: "big"})
	}
	replies, err := c.Pipeline(t.Context(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(replies); i += 2 {
		if r := replies[i]; r.Kind != protocol.ReplyPayload || len(r.Body) != len(payload) {
			t.Fatalf("GET %d: %v (%d bytes)", i/2, r.Kind, len(r.Body))
		}
	}
}
