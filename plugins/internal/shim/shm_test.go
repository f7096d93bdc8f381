//go:build linux

package shim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/walrus-go/walrus/backends/memstore"
	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/engine/enginetest"
)

// gatedStore holds every Append until gate is closed (or its ctx ends),
// announcing each arrival on entered.
type gatedStore struct {
	engine.SegmentStore
	gate      chan struct{}
	entered   chan struct{}
	ignoreCtx bool // hold until gate even when ctx ends (a wedged store)
}

func newGatedStore(capacity int) *gatedStore {
	return &gatedStore{SegmentStore: memstore.New(), gate: make(chan struct{}), entered: make(chan struct{}, capacity)}
}

func (g *gatedStore) Append(ctx context.Context, id engine.SegmentID, entries [][]byte) (uint64, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	if g.ignoreCtx {
		<-g.gate
		return g.SegmentStore.Append(context.WithoutCancel(ctx), id, entries)
	}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return g.SegmentStore.Append(ctx, id, entries)
}

// waitEntered waits (with a deadline) until n appends reached the store.
func waitEntered(t *testing.T, g *gatedStore, n int) {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for range n {
		select {
		case <-g.entered:
		case <-timeout.C:
			t.Fatalf("appends did not reach the store within 10s")
		}
	}
}

// TestShmCarriesAppends: small appends take the ring (no AppendPipe
// request, SharedMemory true); a batch larger than a slot takes AppendPipe;
// one over a chunk takes the streaming Append; all land in order.
func TestShmCarriesAppends(t *testing.T) {
	c, _ := connect(t, memstore.New())
	id := engine.SegmentID{Topic: "shm"}
	for i := range 10 {
		first, err := c.Append(t.Context(), id, [][]byte{{byte(i)}, {}})
		if err != nil || first != uint64(2*i) {
			t.Fatalf("append %d: first=%d err=%v", i, first, err)
		}
	}
	if !c.SharedMemory() || c.appender.requests.Load() != 0 {
		t.Fatalf("shared memory %v, %d AppendPipe requests: small appends did not use the ring", c.SharedMemory(), c.appender.requests.Load())
	}
	overSlot := bytes.Repeat([]byte("s"), shmSlotBytes) // + framing > a slot
	if first, err := c.Append(t.Context(), id, [][]byte{overSlot}); err != nil || first != 20 {
		t.Fatalf("over-slot append: first=%d err=%v", first, err)
	}
	if c.appender.requests.Load() != 1 {
		t.Fatalf("%d AppendPipe requests, want the over-slot batch on AppendPipe", c.appender.requests.Load())
	}
	// Exactly a slot, frame included: still the ring.
	fits := bytes.Repeat([]byte("f"), shmSlotBytes-(4+8+8+2+len(id.Topic)+4+4))
	if first, err := c.Append(t.Context(), id, [][]byte{fits}); err != nil || first != 21 {
		t.Fatalf("slot-sized append: first=%d err=%v", first, err)
	}
	big := bytes.Repeat([]byte("b"), ChunkBytes+1)
	if first, err := c.Append(t.Context(), id, [][]byte{big}); err != nil || first != 22 {
		t.Fatalf("big append: first=%d err=%v", first, err)
	}
	if c.appender.requests.Load() != 1 {
		t.Fatalf("%d AppendPipe requests after the slot-sized and chunk-sized batches, want 1", c.appender.requests.Load())
	}
	got, err := c.Read(t.Context(), id, 0, 100, 8<<20)
	if err != nil || len(got) != 23 || got[2][0] != 1 || len(got[3]) != 0 ||
		!bytes.Equal(got[20], overSlot) || !bytes.Equal(got[21], fits) || !bytes.Equal(got[22], big) {
		t.Fatalf("read back %d entries, %v", len(got), err)
	}
}

// TestShmDeclinedByOlderPlugin: a plugin that does not echo the offer (as
// one built before the ring) gets frames on the data channel socket.
func TestShmDeclinedByOlderPlugin(t *testing.T) {
	p := &Plugin{Impl: memstore.New(), NoSharedMemory: true}
	c := connectGlue(t, p)
	id := engine.SegmentID{Topic: "old"}
	for i := range 5 {
		if first, err := c.Append(t.Context(), id, [][]byte{{byte(i)}}); err != nil || first != uint64(i) {
			t.Fatalf("append %d: first=%d err=%v", i, first, err)
		}
	}
	if c.SharedMemory() || c.data.dc == nil || c.data.dc.shm != nil || c.appender.requests.Load() != 0 {
		t.Fatalf("shared memory %v, data channel %v: want frames on the data channel socket", c.SharedMemory(), c.data.dc)
	}
}

// TestShmHostDeclines: a host with NoSharedMemory never offers the ring.
func TestShmHostDeclines(t *testing.T) {
	p := &Plugin{Impl: memstore.New(), ClientOptions: ClientOptions{NoSharedMemory: true}}
	c := connectGlue(t, p)
	if _, err := c.Append(t.Context(), engine.SegmentID{Topic: "h"}, [][]byte{{1}}); err != nil {
		t.Fatal(err)
	}
	if c.SharedMemory() || c.data.dc == nil {
		t.Fatalf("shared memory %v, data channel %v: want the socket", c.SharedMemory(), c.data.dc)
	}
}

// TestShmConcurrentAppends: more appenders than slots, each checking its
// offsets; parked callers are woken by the reader.
func TestShmConcurrentAppends(t *testing.T) {
	c, _ := connect(t, memstore.New())
	const writers, each = 2 * shmSlots, 100
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			id := engine.SegmentID{Topic: "w", Segment: uint64(w)}
			for i := range each {
				first, err := c.Append(t.Context(), id, [][]byte{{byte(i)}, {byte(w)}})
				if err != nil || first != uint64(2*i) {
					errs <- fmt.Errorf("writer %d append %d: first=%d err=%v", w, i, first, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if !c.SharedMemory() {
		t.Fatal("appends did not use the ring")
	}
}

// TestShmErrorsCrossTheRing: a store error keeps its sentinel.
func TestShmErrorsCrossTheRing(t *testing.T) {
	c, _ := connect(t, memstore.New())
	id := engine.SegmentID{Topic: "e"}
	if _, err := c.Append(t.Context(), id, [][]byte{{1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Seal(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	_, err := c.Append(t.Context(), id, [][]byte{{2}})
	var remote *RemoteError
	if !errors.Is(err, engine.ErrSealed) || !errors.As(err, &remote) || !c.SharedMemory() {
		t.Fatalf("append to a sealed segment over the ring: %v, want ErrSealed from the plugin", err)
	}
}

// TestShmCancelledCallerFreesItsSlot: callers that give up while the store
// holds their appends return ctx.Err(); their slots come back once the
// answers arrive, so later appends can use every slot again.
func TestShmCancelledCallerFreesItsSlot(t *testing.T) {
	g := newGatedStore(shmSlots)
	c, _ := connect(t, g)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	errs := make(chan error, shmSlots)
	for i := range shmSlots {
		wg.Go(func() {
			_, err := c.Append(ctx, engine.SegmentID{Topic: "c", Segment: uint64(i)}, [][]byte{{1}})
			errs <- err
		})
	}
	waitEntered(t, g, shmSlots)
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled append: %v, want context.Canceled", err)
		}
	}
	close(g.gate)
	// Every slot must come back; 2 x slots sequential appends need them to.
	// (The plugin saw its own ctx stay alive and applied the appends.)
	ctx2, cancel2 := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel2()
	for i := range 2 * shmSlots {
		wg.Go(func() {
			if _, err := c.Append(ctx2, engine.SegmentID{Topic: "after", Segment: uint64(i)}, [][]byte{{1}}); err != nil {
				t.Errorf("append %d after the cancellations: %v", i, err)
			}
		})
	}
	wg.Wait()
}

// TestShmPluginGoneWakesWaiters: appends parked in the ring, or waiting
// for a slot, when the plugin's end of the data channel breaks (as when the
// process dies: the store never answers) all return ErrUnavailable, none
// hangs, and later calls fail fast too.
func TestShmPluginGoneWakesWaiters(t *testing.T) {
	g := newGatedStore(shmSlots)
	g.ignoreCtx = true // a dead process answers nothing
	c, server, p := connectPlugin(t, g)
	t.Cleanup(func() { close(g.gate) }) // before p.Stop, which waits for the store
	const callers = shmSlots + 8        // some also wait for a free slot
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			_, err := c.Append(t.Context(), engine.SegmentID{Topic: "g", Segment: uint64(i)}, [][]byte{{1}})
			errs <- err
		})
	}
	waitEntered(t, g, shmSlots)
	p.server.data.mu.Lock()
	for conn := range p.server.data.conns {
		_ = conn.Close()
	}
	p.server.data.mu.Unlock()
	server.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("appends still waiting 20s after the plugin went away")
	}
	close(errs)
	for err := range errs {
		if !errors.Is(err, engine.ErrUnavailable) {
			t.Fatalf("append in flight when the plugin went away: %v, want ErrUnavailable", err)
		}
	}
	if _, err := c.Append(t.Context(), engine.SegmentID{Topic: "g"}, [][]byte{{1}}); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("append after the plugin went away: %v, want ErrUnavailable", err)
	}
}

// TestConformanceSocketFrames runs the conformance suite against a plugin
// that declines the ring, so the older path stays covered (TestConformance
// now runs over the ring).
func TestConformanceSocketFrames(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		Open: func(tb testing.TB, dir string) (engine.SegmentStore, error) {
			return connectGlue(t, &Plugin{Impl: memstore.New(), NoSharedMemory: true}), nil
		},
		NoReopen: true,
	})
}

// connectGlue is connectPlugin with the given glue.
func connectGlue(t *testing.T, p *Plugin) *Client {
	t.Helper()
	t.Cleanup(p.Stop)
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: p})
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	c := raw.(*Client)
	t.Cleanup(c.Release)
	return c
}

// TestShmCarriesReads: reads take the ring (they work with the gRPC server
// stopped); a result larger than a slot is asked again over gRPC (which,
// stopped, fails), and with gRPC up comes back whole.
func TestShmCarriesReads(t *testing.T) {
	c, server := connect(t, memstore.New())
	id := engine.SegmentID{Topic: "r"}
	big := bytes.Repeat([]byte("b"), shmSlotBytes)
	if _, err := c.Append(t.Context(), id, [][]byte{[]byte("a0"), []byte("a1"), {}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(t.Context(), id, [][]byte{big}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Read(t.Context(), id, 0, 3, 1<<20)
	if err != nil || len(got) != 3 || string(got[1]) != "a1" || len(got[2]) != 0 {
		t.Fatalf("read over the ring: %q, %v", got, err)
	}
	// Over gRPC: the whole big entry.
	got, err = c.Read(t.Context(), id, 3, 1, 1)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0], big) {
		t.Fatalf("read of an entry larger than a slot: %d entries, %v", len(got), err)
	}
	// The plugin's errors keep their sentinel.
	if _, err := c.Read(t.Context(), engine.SegmentID{Topic: "none"}, 0, 1, 1); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("read of a missing segment: %v, want ErrNotFound", err)
	}
	server.Stop()
	got, err = c.Read(t.Context(), id, 1, 10, 2)
	if err != nil || len(got) != 2 || string(got[0]) != "a1" {
		t.Fatalf("read over the ring with gRPC stopped: %q, %v", got, err)
	}
	if _, err := c.Read(t.Context(), id, 3, 1, 1); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("read larger than a slot with gRPC stopped: %v, want ErrUnavailable from the gRPC fallback", err)
	}
}

// TestShmReadResponseBounds: a read answer that breaks the read's bounds
// is refused (ErrCorrupt), never allocated past them; a malformed one
// breaks the channel.
func TestShmReadResponseBounds(t *testing.T) {
	ok := appendReadResponseFrame(make([]byte, 0, 1024), 7, [][]byte{[]byte("abc"), []byte("de")})
	body := ok[4:]
	tests := []struct {
		name                          string
		body                          []byte
		id, maxEntries, maxBytes, meb uint64
		corrupt, malformed            bool
	}{
		{name: "fits", body: body, id: 7, maxEntries: 2, maxBytes: 5},
		{name: "too many entries", body: body, id: 7, maxEntries: 1, maxBytes: 5, corrupt: true},
		{name: "too many bytes", body: body, id: 7, maxEntries: 2, maxBytes: 4, corrupt: true},
		{name: "other request", body: body, id: 8, maxEntries: 2, maxBytes: 5, malformed: true},
		{name: "truncated", body: body[:len(body)-1], id: 7, maxEntries: 2, maxBytes: 5, corrupt: true},
		{name: "short", body: body[:10], id: 7, maxEntries: 2, maxBytes: 5, malformed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := decodeReadResponse(tc.body, tc.id, tc.maxEntries, tc.maxBytes, tc.meb)
			switch {
			case tc.malformed:
				if err == nil {
					t.Fatalf("decoded %+v, want a malformed-frame error", res)
				}
			case tc.corrupt:
				if err != nil || !errors.Is(res.corrupt, engine.ErrCorrupt) {
					t.Fatalf("got %+v, %v; want ErrCorrupt", res, err)
				}
			default:
				if err != nil || res.corrupt != nil || len(res.entries) != 2 || string(res.entries[1]) != "de" {
					t.Fatalf("got %+v, %v", res, err)
				}
			}
		})
	}
	if r := appendReadResponseFrame(make([]byte, 0, 16), 1, [][]byte{[]byte("too long for 16")}); r[4+8] != readTooLarge {
		t.Fatalf("an answer larger than the slot is not marked too large: %v", r)
	}
}

// stepStore holds each segment's appends until that segment's gate opens.
type stepStore struct {
	engine.SegmentStore
	mu      sync.Mutex
	gates   map[uint64]chan struct{}
	entered chan uint64
}

func (s *stepStore) gate(seg uint64) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.gates[seg]
	if !ok {
		ch = make(chan struct{})
		s.gates[seg] = ch
	}
	return ch
}

func (s *stepStore) Append(ctx context.Context, id engine.SegmentID, entries [][]byte) (uint64, error) {
	s.entered <- id.Segment
	select {
	case <-s.gate(id.Segment):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return s.SegmentStore.Append(ctx, id, entries)
}

// TestShmLostWakeupRecovered: when the plugin's wake-up for a parked
// caller never comes (here: the plugin finds one already pending and sends
// none, and nobody clears it), the host's reader finds the answer on its
// own within shmRecheck and the call returns instead of waiting out its
// budget.
func TestShmLostWakeupRecovered(t *testing.T) {
	st := &stepStore{SegmentStore: memstore.New(), gates: map[uint64]chan struct{}{}, entered: make(chan uint64, 8)}
	c, _ := connect(t, st)
	dc := c.dataChannel(t.Context())
	if dc == nil || dc.shm == nil {
		t.Skip("no shared-memory ring on this platform")
	}
	h := dc.shm
	// The reader clears the pending flag only when it wakes (or rechecks),
	// so a flag set just before the plugin answers usually swallows that
	// answer's wake-up; a few tries make sure at least one is lost.
	for try := uint64(0); try < 5 && h.lostWakeups.Load() == 0; try++ {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		done := make(chan error, 1)
		go func() {
			_, err := c.Append(ctx, engine.SegmentID{Topic: "lost", Segment: try}, [][]byte{{1}})
			done <- err
		}()
		select {
		case <-st.entered:
		case <-ctx.Done():
			t.Fatal("the append did not reach the store")
		}
		h.ring.hostWakePending().Store(1)
		close(st.gate(try))
		if err := <-done; err != nil {
			t.Fatalf("append whose wake-up was swallowed: %v", err)
		}
		cancel()
	}
	if h.lostWakeups.Load() == 0 {
		t.Fatal("no answer was found by a recheck in 5 tries")
	}
}
