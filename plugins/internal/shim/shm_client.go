package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/engine"
)

const (
	// shmMetadataKey is the gRPC metadata of OpenDataChannel that
	// negotiates the ring: the host offers it in the request, a plugin that
	// can map the ring echoes it in the response header. An older plugin
	// ignores it, and the host keeps framing appends on the socket.
	shmMetadataKey   = "walrus-data-shm"
	shmMetadataValue = "v1"
	// shmAck is the byte a plugin answers the hello with once it mapped
	// the ring.
	shmAck = 'K'
	// shmAckTimeout bounds the wait for that byte.
	shmAckTimeout = 5 * time.Second
	// shmRecheck is how often each side looks at the ring without a
	// wake-up (see shmReadLoop).
	shmRecheck = 25 * time.Millisecond
)

// wakeByte is what either side writes to wake the other.
var wakeByte = []byte{1}

// shmHost is the host's side of a ring: the free slots, a waiter per slot,
// and the mapping, unmapped once every caller left (dataClient.wait).
type shmHost struct {
	ring     *shmRing
	free     chan int // capacity ring.slots: every slot not in use
	waiters  []shmWaiter
	spinners atomic.Int32
	spin     spinPolicy // how long callers poll for their answer
	// lostWakeups counts answers found by a recheck, not a wake-up.
	lostWakeups atomic.Int64
	calls       sync.WaitGroup
	unmapOnce   sync.Once
}

type shmWaiter struct {
	mu        sync.Mutex
	ch        chan struct{} // capacity 1: the reader's "your response is there"
	abandoned bool          // the caller gave up; the reader frees the slot
}

func newShmHost(ring *shmRing) *shmHost {
	h := &shmHost{ring: ring, free: make(chan int, ring.slots), waiters: make([]shmWaiter, ring.slots)}
	for i := range ring.slots {
		h.free <- i
		h.waiters[i].ch = make(chan struct{}, 1)
	}
	return h
}

// shmFrameFits reports whether a batch's request frame fits one slot.
func shmFrameFits(topic string, entries [][]byte, total uint64) bool {
	return requestFrameFits(topic, entries, total) &&
		uint64(4+8+8+2+len(topic)+4+4*len(entries))+total <= shmSlotBytes
}

// openShm sets up the ring on a fresh data channel connection: it sends
// the token with the hello and the memfd, and waits for the plugin's ack.
func openShm(ctx context.Context, conn net.Conn, token []byte) (*dataClient, error) {
	mem, fd, err := createShm(shmSlots, shmSlotBytes)
	if err != nil {
		return nil, err
	}
	ring, err := newShmRing(mem, shmSlots, shmSlotBytes)
	if err == nil {
		err = sendShm(conn, token, shmHello(shmSlots, shmSlotBytes), fd)
	}
	closeFd(fd) // the plugin holds its own copy now, or never will
	if err == nil {
		// Bounded on its own: a plugin that does not acknowledge soon
		// costs this call a fallback to socket frames, not its budget.
		dl := time.Now().Add(shmAckTimeout)
		if cdl, ok := ctx.Deadline(); ok && cdl.Before(dl) {
			dl = cdl
		}
		_ = conn.SetReadDeadline(dl)
		var ack [1]byte
		if _, err = io.ReadFull(conn, ack[:]); err == nil && ack[0] != shmAck {
			err = fmt.Errorf("%w: plugin answered the hello with %q", errShm, ack[0])
		}
	}
	if err != nil {
		unmapShm(mem)
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Time{})
	_ = conn.SetWriteDeadline(time.Time{}) // wake-ups are single bytes
	dc := &dataClient{conn: conn, w: frameWriter{conn: conn}, pending: map[uint64]chan dcResponse{}, done: make(chan struct{}), shm: newShmHost(ring)}
	dc.wg.Add(1)
	go dc.shmReadLoop()
	return dc, nil
}

// shmReadLoop takes the plugin's wake-ups: each byte (or many at once)
// means "look at the slots", and it hands every answered slot whose caller
// parked to that caller. It also looks every shmRecheck without a byte:
// CI (under -race) saw a call wait out its whole budget with its answer in
// its slot, the caller parked and no wake-up pending. The handshake needs
// sequentially consistent atomics (each side stores its flag, then loads
// the other's); the race detector's atomics are acquire/release only
// (tsan's Go entry points), so on x86 both loads can miss both stores.
// Production builds store with XCHG and do not lose wake-ups, but a lost
// one now costs one recheck, not the call, and is counted. It ends,
// failing the channel, when the socket does: the plugin died or the
// client closed.
func (dc *dataClient) shmReadLoop() {
	defer dc.wg.Done()
	h := dc.shm
	buf := make([]byte, 64)
	for {
		_ = dc.conn.SetReadDeadline(time.Now().Add(shmRecheck))
		_, err := dc.conn.Read(buf)
		timedOut := errors.Is(err, os.ErrDeadlineExceeded)
		if err != nil && !timedOut {
			dc.fail(err)
			return
		}
		// Cleared before the scan: a response published after it either
		// is seen by the scan or sends another byte.
		h.ring.hostWakePending().Store(0)
		for i := range h.ring.slots {
			if h.ring.state(i).Load() == slotResponse && h.ring.parked(i).CompareAndSwap(1, 0) {
				if timedOut {
					h.lostWakeups.Add(1)
				}
				h.deliver(i)
			}
		}
	}
}

func (h *shmHost) deliver(i int) {
	w := &h.waiters[i]
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.abandoned {
		w.abandoned = false
		h.release(i)
		return
	}
	w.ch <- struct{}{}
}

func (h *shmHost) release(i int) {
	h.ring.state(i).Store(slotFree)
	h.free <- i // never blocks: one place per slot
}

func (dc *dataClient) unavailable(what string, err error) error {
	return fmt.Errorf("plugin: %s: %w: data channel: %v", what, engine.ErrUnavailable, err)
}

// shmAppend sends one batch (shmFrameFits holds) through a slot and waits
// for its answer. A broken channel is ErrUnavailable (indeterminate).
func (dc *dataClient) shmAppend(ctx context.Context, what string, id engine.SegmentID, entries [][]byte) (uint64, error) {
	i, start, err := dc.shmSubmit(ctx, what, slotKindAppend, func(data []byte, i int) []byte {
		return appendRequestFrame(data, uint64(i), id.Topic, id.Segment, entries)
	})
	if err != nil {
		return 0, err
	}
	defer dc.shm.calls.Done()
	var r dcResponse
	err = dc.shmWait(ctx, what, i, start, func(body []byte) error {
		var derr error
		r, derr = decodeResponse(body)
		if derr == nil && r.id != uint64(i) {
			derr = fmt.Errorf("%w: slot %d answered for request %d", errShm, i, r.id)
		}
		return derr
	})
	if err != nil {
		return 0, err
	}
	return dataResult(r)
}

// shmSubmit takes a free slot, has encode write the request frame into it
// (encode gets the slot's data with length 0 and the slot's index, the
// request id), publishes it and wakes the plugin if it sleeps. On success
// the caller must call h.calls.Done after shmWait.
func (dc *dataClient) shmSubmit(ctx context.Context, what string, kind uint32, encode func([]byte, int) []byte) (int, time.Time, error) {
	h := dc.shm
	dc.mu.Lock()
	if dc.err != nil {
		err := dc.err
		dc.mu.Unlock()
		return 0, time.Time{}, dc.unavailable(what, err)
	}
	h.calls.Add(1) // under mu: wait() only waits once err is set
	dc.mu.Unlock()

	var i int
	select {
	case i = <-h.free:
	case <-dc.done:
		h.calls.Done()
		return 0, time.Time{}, dc.unavailable(what, dc.err)
	case <-ctx.Done():
		h.calls.Done()
		return 0, time.Time{}, fmt.Errorf("plugin: %s: %w (waiting for one of %d ring slots)", what, ctx.Err(), h.ring.slots)
	}
	data := h.ring.data(i)
	frame := encode(data[:0], i)
	if len(frame) > len(data) || &frame[0] != &data[0] {
		panic("shim: a request frame that fits no slot reached the ring") // callers check the size first
	}
	h.ring.length(i).Store(uint32(len(frame)))
	h.ring.kind(i).Store(kind)
	start := time.Now()
	h.ring.state(i).Store(slotRequest)
	if h.ring.pluginSleeping().Load() == 1 && h.ring.pluginSleeping().CompareAndSwap(1, 0) {
		if _, err := dc.conn.Write(wakeByte); err != nil {
			dc.fail(err)
			h.calls.Done()
			return 0, time.Time{}, dc.unavailable(what, err)
		}
	}
	return i, start, nil
}

// shmWait waits for slot i's answer, polling for a while (spinPolicy),
// then parked until the reader hands it over, and gives its frame body to
// decode before freeing the slot. A decode error breaks the channel.
func (dc *dataClient) shmWait(ctx context.Context, what string, i int, start time.Time, decode func([]byte) error) error {
	h := dc.shm
	st := h.ring.state(i)
	answered := func() bool { return st.Load() == slotResponse }
	// Only waits that polled say whether polling pays (see spinPolicy).
	polled := false
	consume := func() error {
		if polled {
			h.spin.observe(time.Since(start))
		}
		body, err := h.ring.frameBody(i)
		if err == nil {
			err = decode(body)
		}
		if err != nil {
			dc.fail(err)
			return dc.unavailable(what, err)
		}
		h.release(i)
		return nil
	}
	if h.spinners.Add(1) <= shmSpinnersMax {
		budget := h.spin.budget()
		polled = budget > 0
		ok := spin(answered, budget)
		h.spinners.Add(-1)
		if ok {
			return consume()
		}
	} else {
		h.spinners.Add(-1)
	}
	w := &h.waiters[i]
	h.ring.parked(i).Store(1)
	if answered() && h.ring.parked(i).CompareAndSwap(1, 0) {
		return consume()
	}
	// Parked: either the plugin sees parked and wakes the reader, or the
	// reader already claimed the slot and is handing it over.
	select {
	case <-w.ch:
		return consume()
	case <-dc.done:
		select {
		case <-w.ch:
			return consume()
		default:
		}
		return dc.unavailable(what, dc.err)
	case <-ctx.Done():
		w.mu.Lock()
		select {
		case <-w.ch:
			w.mu.Unlock()
			return consume()
		default:
			w.abandoned = true // the slot is freed when its answer comes
		}
		w.mu.Unlock()
		// The ring's words say where a stuck call is stuck.
		return fmt.Errorf("plugin: %s: %w (ring slot %d: state %d, parked %d; plugin sleeping %d, host wake pending %d; %d slots free)",
			what, ctx.Err(), i, st.Load(), h.ring.parked(i).Load(), h.ring.pluginSleeping().Load(), h.ring.hostWakePending().Load(), len(h.free))
	}
}

// waitShm waits for the callers of a failed ring, then unmaps it.
func (h *shmHost) waitAndUnmap() {
	h.calls.Wait()
	h.unmapOnce.Do(func() { unmapShm(h.ring.mem) })
}
