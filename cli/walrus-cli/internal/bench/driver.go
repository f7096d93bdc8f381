package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
)

// driver runs one pipelined connection on a single goroutine, the way
// redis-benchmark does: it writes a batch of requests with one Flush, then
// reads replies until at least half the window is free, writes the next
// batch, and so on. Between depth/2 and depth requests stay in flight, each
// write system call carries up to depth/2 requests, and no goroutine hand-off
// or lock is needed per request — which keeps the generator's CPU per message
// far below a node's.
//
// Per-request data (the flush time, a tag such as the topic of a GET) lives
// in rings of depth slots indexed by request number.
type driver struct {
	p        Pipe
	depth    int
	lowWater int
	h        *Histogram
	base     time.Time
	sentAt   []int64 // ns since base when request i%depth was flushed
	tags     []int32
	sent     uint64 // requests flushed
	recvd    uint64 // replies read

	pendingFlush uint64 // requests Sent since the last Flush
}

func newDriver(p Pipe, depth int, h *Histogram) *driver {
	return &driver{
		p: p, depth: depth, lowWater: max(1, depth/2), h: h, base: time.Now(),
		sentAt: make([]int64, depth), tags: make([]int32, depth),
	}
}

// filler sends up to free requests with d.send and reports whether it will
// send more later. It may block (e.g. to pace polling) only when inflight is
// 0; otherwise it should return at once so that replies are read.
type filler func(free, inflight int) (more bool, err error)

// send Sends one request; the driver flushes after the filler returns.
func (d *driver) send(req protocol.Request, tag int32) error {
	if err := d.p.Send(req); err != nil {
		return err
	}
	d.tags[(d.sent+d.pendingFlush)%uint64(d.depth)] = tag
	d.pendingFlush++
	return nil
}

// run drives the connection until fill has nothing more to send and every
// reply is in; handle gets each reply with its request's tag.
func (d *driver) run(ctx context.Context, fill filler, handle func(rep protocol.Reply, tag int32)) error {
	more := true
	for {
		inflight := int(d.sent - d.recvd)
		if more && (inflight == 0 || d.depth-inflight >= d.lowWater) {
			var err error
			if more, err = fill(d.depth-inflight, inflight); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			if d.pendingFlush > 0 {
				if err := d.p.Flush(); err != nil {
					return fmt.Errorf("send: %w", err)
				}
				now := int64(time.Since(d.base))
				for range d.pendingFlush {
					d.sentAt[d.sent%uint64(d.depth)] = now
					d.sent++
				}
				d.pendingFlush = 0
			}
			inflight = int(d.sent - d.recvd)
		}
		if inflight == 0 {
			if !more {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			continue
		}
		rep, err := d.p.Recv()
		if err != nil {
			return fmt.Errorf("read reply %d: %w", d.recvd, err)
		}
		slot := d.recvd % uint64(d.depth)
		d.h.Record(time.Since(d.base) - time.Duration(d.sentAt[slot]))
		d.recvd++
		handle(rep, d.tags[slot])
	}
}
