package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/rpc"
	"github.com/walrus-go/walrus/node/wire"
)

// rpcPeer is a fake leader reached over a pipelined connection: each
// AppendPartsAsync becomes a call that the test answers (or a reader
// goroutine answers at once when auto is set), and callbacks run on that
// reader, as node/rpc runs them.
type rpcPeer struct {
	t     *testing.T
	auto  bool
	fail  error // auto answers with it
	calls chan *peerCall

	mu      sync.Mutex
	stored  map[string]int // entry -> times stored
	rpcs    int
	reentry bool // AppendPartsAsync ran on the reader

	stop chan struct{}
	wg   sync.WaitGroup
}

type peerCall struct {
	entries [][]byte
	cb      func(error)
}

func newRPCPeer(t *testing.T, auto bool) *rpcPeer {
	p := &rpcPeer{t: t, auto: auto, calls: make(chan *peerCall, 1024), stored: map[string]int{}, stop: make(chan struct{})}
	if auto {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.fakeReader()
		}()
	}
	t.Cleanup(func() {
		close(p.stop)
		p.wg.Wait()
	})
	return p
}

func (p *rpcPeer) AppendPartsAsync(_ string, parts [][][]byte, cb func(error)) {
	buf := make([]byte, 8<<10)
	if strings.Contains(string(buf[:runtime.Stack(buf, false)]), "fakeReader") {
		p.mu.Lock()
		p.reentry = true
		p.mu.Unlock()
	}
	c := &peerCall{cb: cb}
	for _, part := range parts {
		c.entries = append(c.entries, part...)
	}
	p.mu.Lock()
	p.rpcs++
	p.mu.Unlock()
	p.calls <- c
}

// fakeReader answers calls in order, as the connection's reader would.
func (p *rpcPeer) fakeReader() {
	for {
		select {
		case <-p.stop:
			return
		case c := <-p.calls:
			p.answer(c, p.fail)
		}
	}
}

func (p *rpcPeer) answer(c *peerCall, err error) {
	if err == nil {
		p.mu.Lock()
		for _, e := range c.entries {
			p.stored[string(e)]++
		}
		p.mu.Unlock()
	}
	c.cb(err)
}

func (p *rpcPeer) next() *peerCall {
	p.t.Helper()
	select {
	case c := <-p.calls:
		return c
	case <-time.After(10 * time.Second):
		p.t.Fatal("no append RPC")
		return nil
	}
}

func newFwdRouter(t *testing.T, peer Forwarder) *Router {
	fsm := metadata.NewFSM()
	if r := fsm.ApplyCommand(metadata.CreateTopic{Topic: "far", Leader: 2}); r.Err != nil {
		t.Fatal(r.Err)
	}
	r := New(Config{Self: 1}, Deps{
		FSM: fsm, Leader: &fakeLeader{fsm: fsm}, Local: &fakeAppender{},
		Peer:    func(uint64) Forwarder { return peer },
		Metrics: metrics.New(1), Logger: slog.New(slog.DiscardHandler), Stopping: make(chan struct{}),
	})
	t.Cleanup(r.Close)
	return r
}

// queued waits until the forwarder of "far" holds n ops.
func queued(t *testing.T, r *Router, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := r.forwarder("far", 2)
		if err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		got := len(f.queue)
		f.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d ops queued, want %d", got, n)
		}
		runtime.Gosched()
	}
}

type putResult struct {
	entry string
	err   error
}

func goPut(ctx context.Context, r *Router, entry string, out chan<- putResult) {
	go func() {
		out <- putResult{entry, r.Put(ctx, "far", entries(entry))}
	}()
}

// TestForwardBatchesWhileInFlight: requests that arrive while an RPC is in
// flight travel together in the next one, sent once the first answers.
func TestForwardBatchesWhileInFlight(t *testing.T) {
	peer := newRPCPeer(t, false)
	r := newFwdRouter(t, peer)
	out := make(chan putResult, 11)
	goPut(t.Context(), r, "first", out)
	first := peer.next()
	for i := range 10 {
		goPut(t.Context(), r, fmt.Sprint(i), out)
	}
	queued(t, r, 10)
	peer.answer(first, nil)
	second := peer.next()
	if len(second.entries) != 10 {
		t.Fatalf("second RPC carries %d entries, want 10", len(second.entries))
	}
	peer.answer(second, nil)
	for range 11 {
		if res := <-out; res.err != nil {
			t.Fatalf("%s: %v", res.entry, res.err)
		}
	}
}

// TestForwardEagerSecondRPC: a large waiting batch does not wait for the
// RPC in flight.
func TestForwardEagerSecondRPC(t *testing.T) {
	peer := newRPCPeer(t, false)
	r := newFwdRouter(t, peer)
	out := make(chan putResult, 2)
	goPut(t.Context(), r, "first", out)
	first := peer.next()
	big := make([][]byte, forwardEagerEntries)
	for i := range big {
		big[i] = fmt.Appendf(nil, "b%d", i)
	}
	go func() { out <- putResult{"big", r.Put(t.Context(), "far", big)} }()
	second := peer.next()
	if len(second.entries) != len(big) {
		t.Fatalf("second RPC carries %d entries", len(second.entries))
	}
	peer.answer(second, nil)
	peer.answer(first, nil)
	for range 2 {
		if res := <-out; res.err != nil {
			t.Fatalf("%s: %v", res.entry, res.err)
		}
	}
}

// TestForwardAbandonedOpsAreNotSent: a request whose caller gave up while
// it waited is dropped; one that gave up after its batch left still has
// the next batch sent by a caller that waits.
func TestForwardAbandonedOpsAreNotSent(t *testing.T) {
	peer := newRPCPeer(t, false)
	r := newFwdRouter(t, peer)
	out := make(chan putResult, 3)
	ctx1, cancel1 := context.WithCancel(t.Context())
	goPut(ctx1, r, "gave-up-in-flight", out)
	first := peer.next()
	ctx2, cancel2 := context.WithCancel(t.Context())
	goPut(ctx2, r, "gave-up-queued", out)
	queued(t, r, 1)
	cancel1()
	cancel2()
	for range 2 {
		if res := <-out; !errors.Is(res.err, context.Canceled) {
			t.Fatalf("%s: %v, want canceled", res.entry, res.err)
		}
	}
	goPut(t.Context(), r, "waits", out)
	queued(t, r, 2)
	peer.answer(first, nil) // its only caller left: "waits" must send next
	second := peer.next()
	if len(second.entries) != 1 || string(second.entries[0]) != "waits" {
		t.Fatalf("second RPC carries %q", second.entries)
	}
	peer.answer(second, nil)
	if res := <-out; res.err != nil {
		t.Fatalf("%s: %v", res.entry, res.err)
	}
}

// TestForwardConcurrentLoad: many callers, some giving up, over a reader
// that answers at once: every acknowledged entry is stored once, nothing
// is sent from the reader, and Close fails what is left.
func TestForwardConcurrentLoad(t *testing.T) {
	for _, fail := range []error{nil, fmt.Errorf("%w: peer", rpc.ErrConnLost)} {
		t.Run(fmt.Sprintf("fail=%v", fail != nil), func(t *testing.T) {
			peer := newRPCPeer(t, true)
			peer.fail = fail
			r := newFwdRouter(t, peer)
			const callers, each = 16, 50
			var wg sync.WaitGroup
			var mu sync.Mutex
			acked := map[string]bool{}
			for c := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						ctx, cancel := context.WithCancel(t.Context())
						if i%7 == 3 {
							cancel() // gives up at once
						}
						e := fmt.Sprintf("%d-%d", c, i)
						err := r.Put(ctx, "far", entries(e))
						cancel()
						if err == nil {
							mu.Lock()
							acked[e] = true
							mu.Unlock()
						} else if fail != nil && !errors.Is(err, context.Canceled) && !wire.OutcomeUnknown(err) {
							t.Errorf("%s: %v, want an outcome-unknown error", e, err)
						}
					}
				}()
			}
			wg.Wait()
			peer.mu.Lock()
			defer peer.mu.Unlock()
			if peer.reentry {
				t.Error("an append was sent from the connection's reader")
			}
			for e := range acked {
				if peer.stored[e] != 1 {
					t.Errorf("%s acknowledged, stored %d times", e, peer.stored[e])
				}
			}
			for e, n := range peer.stored {
				if n != 1 {
					t.Errorf("%s stored %d times", e, n)
				}
			}
			if fail == nil && len(acked) < callers*each*5/7 {
				t.Errorf("%d of %d acknowledged", len(acked), callers*each)
			}
			// Every forward is done: no batcher stays behind (an idle
			// topic costs nothing here).
			r.fwd.mu.Lock()
			left := len(r.fwd.m)
			r.fwd.mu.Unlock()
			if left != 0 {
				t.Errorf("%d forwarders left after the last forward returned", left)
			}
		})
	}
}

// TestForwardCloseFailsQueued: Close answers the queued requests.
func TestForwardCloseFailsQueued(t *testing.T) {
	peer := newRPCPeer(t, false)
	r := newFwdRouter(t, peer)
	out := make(chan putResult, 2)
	goPut(t.Context(), r, "in-flight", out)
	first := peer.next()
	goPut(t.Context(), r, "queued", out)
	queued(t, r, 1)
	r.Close()
	if res := <-out; res.entry != "queued" || !errors.Is(res.err, wire.ErrShuttingDown) {
		t.Fatalf("%s: %v, want shutting down", res.entry, res.err)
	}
	peer.answer(first, nil)
	if res := <-out; res.err != nil {
		t.Fatalf("%s: %v", res.entry, res.err)
	}
	if _, err := r.forwarder("far", 2); !errors.Is(err, wire.ErrShuttingDown) {
		t.Fatalf("forwarder after Close: %v", err)
	}
}
