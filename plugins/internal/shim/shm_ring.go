package shim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

// The shared-memory ring (issue 12, item 4). On Linux the host creates a
// memfd per data channel connection, maps it, and passes the descriptor to
// the plugin over the connection (SCM_RIGHTS) right after the token; the
// plugin maps it too. From then on appends travel through fixed slots in
// that memory and the socket only carries one-byte wake-ups, sent only to
// a side that announced it is going to sleep:
//
//	offset 0       header: u32 magic | u32 version | u32 slots | u32 slot bytes
//	offset 64      u32 pluginSleeping  (plugin: "about to block on the socket")
//	offset 128     u32 hostWakePending (plugin sent a wake-up the host has not taken)
//	offset 4096    slots x 64 B control: u32 state | u32 parked | u32 length | u32 kind
//	offset dataOff slots x slotBytes data: a data channel frame (request, then response)
//
// Appends and reads (shm_read.go) both use the slots. A slot's state moves free -> request (host) -> busy (plugin) -> response
// (plugin) -> free (host). Each side writes the data and the length before
// it publishes the state with an atomic store, and reads them only after an
// atomic load of that state showed the other side published; Go's atomics
// are sequentially consistent, which is also what makes the sleep/wake
// handshakes below free of lost wake-ups (each side stores its flag, then
// loads the other's).
//
// Wake-ups: the host sends a byte only if the plugin's dispatcher set
// pluginSleeping (and the host is the one that clears it); the plugin sends
// a byte only if the slot's caller parked (set parked) and no wake-up is
// pending already, so one byte can wake the host's reader for many slots.
// Both sides poll briefly before sleeping (spinPolicy), so a steady stream
// of calls to a fast store needs no syscall at all.
const (
	shmMagic   = 0x4d485357 // "WSHM"
	shmVersion = 1
	// shmSlots bounds the appends in flight on one connection; more wait
	// for a free slot.
	shmSlots = 32
	// shmSlotBytes bounds one request frame; a larger batch takes the gRPC
	// path (AppendPipe up to ChunkBytes, the streaming Append beyond). The
	// memory is only touched where slots are used.
	shmSlotBytes = 256 << 10
	// shmSpinMax bounds how long a side polls before it sleeps on the
	// socket. Each side polls for about twice the wait it has been seeing
	// (spinPolicy) and not at all once that passes shmSpinMax: a fast
	// store (mmap, 128 x 100 B: ~14 µs) and the host's turn-around between
	// calls are caught without a wake-up, while a slow store (fsync) or a
	// machine too busy to run the other side soon does not burn CPU.
	shmSpinMax = 100 * time.Microsecond
	// shmSpinMin is the poll of a side that has seen no waits yet.
	shmSpinMin = 5 * time.Microsecond
	// shmSpinnersMax bounds how many host callers poll at once; the others
	// park straight away (16 appenders polling on 2 cores would starve the
	// plugin).
	shmSpinnersMax = 1
	// shmSlotsMax and shmSlotBytesMax bound what a plugin accepts in the
	// hello (the host is trusted but a bad hello must not map gigabytes).
	shmSlotsMax     = 1024
	shmSlotBytesMax = 4 << 20

	shmHeaderBytes  = 4096
	shmControlBytes = 64
	shmHelloBytes   = 16

	offPluginSleeping  = 64
	offHostWakePending = 128

	slotFree     = 0
	slotRequest  = 1
	slotBusy     = 2
	slotResponse = 3
)

// errShm marks a broken shared-memory protocol (bad hello, bad length); the
// connection is dropped and the host falls back or reports the plugin
// unavailable.
var errShm = errors.New("shared-memory data channel")

// shmRing is one mapping of the ring. mem stays mapped until the owner
// unmaps it after every user returned.
type shmRing struct {
	mem       []byte
	slots     int
	slotBytes int
}

func shmDataOffset(slots int) int {
	off := shmHeaderBytes + slots*shmControlBytes
	return (off + 4095) &^ 4095
}

func shmRingBytes(slots, slotBytes int) int {
	return shmDataOffset(slots) + slots*slotBytes
}

// newShmRing wraps a mapping of at least shmRingBytes(slots, slotBytes).
func newShmRing(mem []byte, slots, slotBytes int) (*shmRing, error) {
	if slots < 1 || slots > shmSlotsMax || slotBytes < 4096 || slotBytes > shmSlotBytesMax || slotBytes%8 != 0 {
		return nil, fmt.Errorf("%w: %d slots of %d bytes out of bounds", errShm, slots, slotBytes)
	}
	if len(mem) < shmRingBytes(slots, slotBytes) {
		return nil, fmt.Errorf("%w: mapping of %d bytes, need %d", errShm, len(mem), shmRingBytes(slots, slotBytes))
	}
	return &shmRing{mem: mem, slots: slots, slotBytes: slotBytes}, nil
}

func (r *shmRing) word(off int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&r.mem[off]))
}

func (r *shmRing) pluginSleeping() *atomic.Uint32  { return r.word(offPluginSleeping) }
func (r *shmRing) hostWakePending() *atomic.Uint32 { return r.word(offHostWakePending) }
func (r *shmRing) state(i int) *atomic.Uint32 {
	return r.word(shmHeaderBytes + i*shmControlBytes)
}
func (r *shmRing) parked(i int) *atomic.Uint32 {
	return r.word(shmHeaderBytes + i*shmControlBytes + 4)
}
func (r *shmRing) length(i int) *atomic.Uint32 {
	return r.word(shmHeaderBytes + i*shmControlBytes + 8)
}

// data is slot i's data area, with its capacity cut so an append to it can
// never run into the next slot.
func (r *shmRing) data(i int) []byte {
	off := shmDataOffset(r.slots) + i*r.slotBytes
	return r.mem[off : off+r.slotBytes : off+r.slotBytes]
}

// frameBody returns the body of the frame in slot i (after its u32 length),
// checking the published length against the slot and the frame's own
// length prefix.
func (r *shmRing) frameBody(i int) ([]byte, error) {
	n := int(r.length(i).Load())
	if n < 4 || n > r.slotBytes {
		return nil, fmt.Errorf("%w: slot %d holds %d bytes, slots are %d", errShm, i, n, r.slotBytes)
	}
	d := r.data(i)
	if int(binary.LittleEndian.Uint32(d))+4 != n {
		return nil, fmt.Errorf("%w: slot %d frame length %d does not match %d", errShm, i, binary.LittleEndian.Uint32(d), n-4)
	}
	return d[4:n], nil
}

// hello is what the host sends after the token, with the descriptor.
func shmHello(slots, slotBytes int) []byte {
	b := binary.LittleEndian.AppendUint32(nil, shmMagic)
	b = binary.LittleEndian.AppendUint32(b, shmVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(slots))
	return binary.LittleEndian.AppendUint32(b, uint32(slotBytes))
}

func parseShmHello(b []byte) (slots, slotBytes int, err error) {
	if len(b) != shmHelloBytes || binary.LittleEndian.Uint32(b) != shmMagic {
		return 0, 0, fmt.Errorf("%w: bad hello", errShm)
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != shmVersion {
		return 0, 0, fmt.Errorf("%w: ring version %d, this side speaks %d", errShm, v, shmVersion)
	}
	return int(binary.LittleEndian.Uint32(b[8:])), int(binary.LittleEndian.Uint32(b[12:])), nil
}

// spinPolicy decides how long to poll from the waits seen so far: a moving
// average (1/8 weight per observation) of how long a wait took, including
// the ones that ended in a sleep. Shared by goroutines; races between
// observations only blur the average.
type spinPolicy struct{ avgNs atomic.Int64 }

func (p *spinPolicy) budget() time.Duration {
	avg := time.Duration(p.avgNs.Load())
	if avg > shmSpinMax {
		return 0
	}
	return min(shmSpinMax, max(shmSpinMin, 2*avg))
}

func (p *spinPolicy) observe(d time.Duration) {
	// Clamped, so a long idle spell turns polling off without keeping it
	// off for the next hundred quick calls.
	d = min(d, 4*shmSpinMax)
	old := p.avgNs.Load()
	p.avgNs.Store(old + (int64(d)-old)/8)
}

// spin polls cond until it holds or budget passed, yielding the processor
// between probes. It reports whether cond held.
func spin(cond func() bool, budget time.Duration) bool {
	if budget <= 0 {
		return cond()
	}
	deadline := time.Now().Add(budget)
	for i := 0; ; i++ {
		if cond() {
			return true
		}
		if i%16 == 15 {
			if time.Now().After(deadline) {
				return false
			}
			runtime.Gosched()
		}
	}
}
