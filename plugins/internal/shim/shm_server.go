package shim

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// shmErrorTextMax bounds the error reason and message a response carries,
// so an error answer always fits its slot.
const shmErrorTextMax = 4096

// serveShm serves one connection whose token came with a ring descriptor:
// it reads the hello, maps the ring, acknowledges, and dispatches appends
// from the slots until the host goes away or the server stops. The ring is
// unmapped after every append it started returned. It owns fd.
func (d *dataServer) serveShm(ctx context.Context, c net.Conn, fd int) {
	hello := make([]byte, shmHelloBytes)
	if _, err := io.ReadFull(c, hello); err != nil {
		closeFd(fd)
		return
	}
	slots, slotBytes, err := parseShmHello(hello)
	if err != nil || !d.shm {
		closeFd(fd) // a host that did not negotiate the ring: drop it
		return
	}
	mem, err := mapShmFd(fd, slots, slotBytes)
	if err != nil {
		return // the host sees the connection close and uses the socket
	}
	defer unmapShm(mem)
	ring, err := newShmRing(mem, slots, slotBytes)
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if _, err := c.Write([]byte{shmAck}); err != nil {
		return
	}
	d.runShm(ctx, c, ring)
}

// runShm is the plugin's dispatcher: it claims requests from the slots and
// runs them (inline when it is the only one, concurrently otherwise, so the
// store can group-commit them), polling for a while (spinPolicy) when idle and then
// sleeping on the socket until the host's wake-up byte.
func (d *dataServer) runShm(ctx context.Context, c net.Conn, ring *shmRing) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var handlers sync.WaitGroup
	defer handlers.Wait()
	drop := func() { // a protocol violation: end the connection
		cancel()
		_ = c.Close()
	}
	pending := func() bool {
		for i := range ring.slots {
			if ring.state(i).Load() == slotRequest {
				return true
			}
		}
		return false
	}
	found := make([]int, 0, ring.slots)
	buf := make([]byte, 64)
	var policy spinPolicy // how long to poll for the next request
	var idleSince time.Time
	polled := false
	for ctx.Err() == nil {
		found = found[:0]
		for i := range ring.slots {
			if ring.state(i).CompareAndSwap(slotRequest, slotBusy) {
				found = append(found, i)
			}
		}
		if len(found) > 0 && !idleSince.IsZero() {
			if polled { // only waits that polled say whether polling pays
				policy.observe(time.Since(idleSince))
			}
			idleSince = time.Time{}
		}
		// Every request on its own goroutine: handling one inline would
		// stall the ring behind a slow store call (an fsync, a store that
		// waits), and every other slot's request with it.
		if len(found) > 0 {
			for _, i := range found {
				handlers.Go(func() { d.shmHandle(ctx, c, ring, i, drop) })
			}
			continue
		}
		if idleSince.IsZero() {
			idleSince = time.Now()
		}
		budget := policy.budget()
		polled = budget > 0
		if spin(pending, budget) {
			continue
		}
		// Announce the sleep, then look once more: a request published
		// before the announcement is seen here, one after it comes with a
		// wake-up byte.
		ring.pluginSleeping().Store(1)
		if pending() {
			// If the host cleared the flag meanwhile, its byte arrives
			// later and only costs one empty pass.
			ring.pluginSleeping().CompareAndSwap(1, 0)
			continue
		}
		// Asleep, but never for longer than shmRecheck: a lost wake-up
		// (see shmReadLoop) costs one recheck.
		_ = c.SetReadDeadline(time.Now().Add(shmRecheck))
		if _, err := c.Read(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				ring.pluginSleeping().CompareAndSwap(1, 0)
				continue
			}
			return // the host went away, or stop closed the connection
		}
	}
}

// shmHandle runs the request in slot i (an append or a read) and
// publishes its answer there.
func (d *dataServer) shmHandle(ctx context.Context, c net.Conn, ring *shmRing, i int, drop func()) {
	body, err := ring.frameBody(i)
	if err != nil {
		drop()
		return
	}
	// A copy: the store may keep the entries, and the host must not be
	// able to change a request under the decoder's feet.
	own := append([]byte(nil), body...)
	var out []byte
	if ring.kind(i).Load() == slotKindRead {
		out, err = d.shmHandleRead(ctx, ring, i, own)
	} else {
		out, err = d.shmHandleAppend(ctx, ring, i, own)
	}
	if err != nil {
		drop()
		return
	}
	if data := ring.data(i); len(out) > len(data) || &out[0] != &data[0] {
		panic("shim: a response frame outgrew its slot") // bounded by shmErrorTextMax and the read's fit check
	}
	ring.length(i).Store(uint32(len(out)))
	ring.state(i).Store(slotResponse)
	if ring.parked(i).Load() == 1 && ring.hostWakePending().CompareAndSwap(0, 1) {
		_, _ = c.Write(wakeByte) // fails only when the host is gone
	}
}

// shmHandleAppend runs the append whose request (copied out) is body and
// encodes its answer into slot i.
func (d *dataServer) shmHandleAppend(ctx context.Context, ring *shmRing, i int, body []byte) ([]byte, error) {
	req, err := decodeRequest(body)
	if err != nil {
		return nil, err
	}
	resp := dcResponse{id: req.id, ok: true}
	first, err := d.store.Append(ctx, engine.SegmentID{Topic: req.topic, Segment: req.segment}, req.entries)
	if err != nil {
		code, reason := classify(err)
		resp = dcResponse{id: req.id, code: uint32(code), reason: truncate(reason), message: truncate(err.Error())}
	} else {
		resp.first = first
	}
	return appendResponseFrame(ring.data(i)[:0], resp), nil
}

func truncate(s string) string {
	if len(s) > shmErrorTextMax {
		return s[:shmErrorTextMax]
	}
	return s
}
