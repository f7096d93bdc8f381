package bench

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
)

// memBroker is an in-memory stand-in for a cluster: topics are FIFO queues
// shared by every pipe, GET pops. It lets the engine's bookkeeping be tested
// without a network.
type memBroker struct {
	mu     sync.Mutex
	topics map[string][][]byte
	// mutate, when set, may change a payload on its way in (corruption and
	// duplication tests); it returns the payloads to store.
	mutate func(p []byte) [][]byte
}

func newMemBroker() *memBroker { return &memBroker{topics: map[string][][]byte{}} }

func (b *memBroker) handle(req protocol.Request) protocol.Reply {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch req.Command {
	case protocol.CmdRegister:
		if _, ok := b.topics[req.Topic]; !ok {
			b.topics[req.Topic] = nil
		}
		return protocol.OK()
	case protocol.CmdPut:
		p := append([]byte(nil), req.Payload...)
		ps := [][]byte{p}
		if b.mutate != nil {
			ps = b.mutate(p)
		}
		b.topics[req.Topic] = append(b.topics[req.Topic], ps...)
		return protocol.OK()
	case protocol.CmdGet:
		q := b.topics[req.Topic]
		if len(q) == 0 {
			return protocol.Empty()
		}
		b.topics[req.Topic] = q[1:]
		return protocol.Payload(q[0])
	}
	return protocol.UnknownCommand(req.Command)
}

// memPipe answers at Flush, like a server that sees a batch when it is
// written.
type memPipe struct {
	b       *memBroker
	queue   []protocol.Request
	replies chan protocol.Reply
	closed  chan struct{}
	once    sync.Once
	pending atomic.Int64 // sent, not yet received: Recv with none is a bug, as in node/client
}

func (b *memBroker) dial(context.Context, string) (Pipe, error) {
	return &memPipe{b: b, replies: make(chan protocol.Reply, 1<<16), closed: make(chan struct{})}, nil
}

func (p *memPipe) Send(req protocol.Request) error {
	req.Payload = append([]byte(nil), req.Payload...) // the caller reuses its buffer
	p.queue = append(p.queue, req)
	p.pending.Add(1)
	return nil
}

func (p *memPipe) Flush() error {
	for _, r := range p.queue {
		select {
		case p.replies <- p.b.handle(r):
		case <-p.closed:
			return net.ErrClosed
		}
	}
	p.queue = p.queue[:0]
	return nil
}

func (p *memPipe) Recv() (protocol.Reply, error) {
	if p.pending.Add(-1) < 0 {
		return protocol.Reply{}, errors.New("memPipe: Recv with no request pending")
	}
	select {
	case r := <-p.replies:
		return r, nil
	case <-p.closed:
		return protocol.Reply{}, net.ErrClosed
	}
}

func (p *memPipe) Close() error { p.once.Do(func() { close(p.closed) }); return nil }

func testConfig(b *memBroker) Config {
	return Config{Addrs: []string{"a", "b"}, Clients: 5, Messages: 10_007, Size: 100, Topics: 3,
		TopicPrefix: "bench", Pipeline: 16, DrainWait: 50 * time.Millisecond, Dial: b.dial}
}

func TestProduceConsumeVerifies(t *testing.T) {
	b := newMemBroker()
	cfg := testConfig(b)
	var lastProgress uint64
	cfg.Progress = func(n uint64) { lastProgress = n }
	pr, err := Produce(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Messages != cfg.Messages || pr.Errors != 0 || !pr.OK() {
		t.Fatalf("produce report %+v", pr)
	}
	if lastProgress != cfg.Messages {
		t.Fatalf("final progress %d, want %d", lastProgress, cfg.Messages)
	}
	if pr.Latency.P99 <= 0 || pr.MsgsPerSec <= 0 || pr.Bytes != cfg.Messages*100 {
		t.Fatalf("report numbers: %+v", pr)
	}
	// every topic got its share: seq%3
	for i := range 3 {
		if n := len(b.topics[TopicName("bench", i)]); n < 3335 || n > 3336 {
			t.Fatalf("topic %d has %d messages", i, n)
		}
	}
	ccfg := testConfig(b)
	ccfg.Clients = 2 // fewer clients than topics: one client reads two
	ccfg.Messages = 0
	cr, err := Consume(t.Context(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	v := cr.Verify
	if !cr.OK() || v.Verified != cfg.Messages || v.Expected != cfg.Messages || v.Missing != 0 || v.Duplicates != 0 || v.Corrupt != 0 {
		t.Fatalf("consume report %+v verify %+v", cr, v)
	}
	if cr.Run != pr.Run {
		t.Fatalf("consume verified run %s, produce wrote %s", cr.Run, pr.Run)
	}
}

func TestConsumeReportsLossDuplicatesCorruptionAndForeign(t *testing.T) {
	b := newMemBroker()
	n := 0
	b.mutate = func(p []byte) [][]byte {
		n++
		switch n {
		case 10: // lost
			return nil
		case 20: // duplicated
			return [][]byte{p, p}
		case 30: // one byte flipped: corrupt, and therefore also missing
			q := append([]byte(nil), p...)
			q[len(q)-1] ^= 1
			return [][]byte{q}
		}
		return [][]byte{p}
	}
	cfg := testConfig(b)
	cfg.Messages = 1000
	cfg.Run = 0xabc
	if _, err := Produce(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	// a leftover of another run
	b.mutate = nil
	b.handle(protocol.Request{Command: protocol.CmdPut, Topic: "bench-0",
		Payload: EncodePayload(make([]byte, 64), Message{Run: 0xdef, Total: 5, Seq: 1})})

	cfg.Messages = 0
	cr, err := Consume(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := Verify{Expected: 1000, Verified: 998, Missing: 2, Duplicates: 1, Corrupt: 1, Foreign: 1}
	got := *cr.Verify
	got.Empty = 0
	if got != want {
		t.Fatalf("verify %+v, want %+v", got, want)
	}
	if cr.OK() {
		t.Fatal("a run with loss must not be OK")
	}
}

func TestConsumeNothingExpected(t *testing.T) {
	b := newMemBroker()
	cfg := testConfig(b)
	cfg.Messages = 50
	cr, err := Consume(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cr.Verify.Missing != 50 || cr.OK() {
		t.Fatalf("empty topics: %+v", cr.Verify)
	}
}

func TestProduceCountsErrReplies(t *testing.T) {
	b := newMemBroker()
	cfg := testConfig(b)
	cfg.Messages = 100
	dial := cfg.Dial
	cfg.Dial = func(ctx context.Context, addr string) (Pipe, error) {
		p, err := dial(ctx, addr)
		return &errPipe{Pipe: p}, err
	}
	pr, err := Produce(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Errors != 100 || pr.Messages != 0 || pr.OK() || pr.FirstError != "ERR disk full" {
		t.Fatalf("report %+v", pr)
	}
}

// errPipe answers every PUT with ERR disk full.
type errPipe struct {
	Pipe
	mu   sync.Mutex
	cmds []string
}

func (p *errPipe) Send(req protocol.Request) error {
	p.mu.Lock()
	p.cmds = append(p.cmds, req.Command)
	p.mu.Unlock()
	return p.Pipe.Send(req)
}

func (p *errPipe) Recv() (protocol.Reply, error) {
	r, err := p.Pipe.Recv()
	p.mu.Lock()
	cmd := p.cmds[0]
	p.cmds = p.cmds[1:]
	p.mu.Unlock()
	if err == nil && cmd == protocol.CmdPut {
		return protocol.Errf("disk full"), nil
	}
	return r, err
}

func TestProduceStopsOnCancel(t *testing.T) {
	b := newMemBroker()
	cfg := testConfig(b)
	cfg.Messages = 1 << 30
	ctx, cancel := context.WithCancel(t.Context())
	cfg.Progress = func(n uint64) {
		if n > 1000 {
			cancel()
		}
	}
	_, err := Produce(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestConfigValidation(t *testing.T) {
	b := newMemBroker()
	cfg := testConfig(b)
	cfg.Size = 10
	cfg.Clients = 0
	if _, err := Produce(t.Context(), cfg); !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v", err)
	}
}
