package shim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/backends/memstore"
	"github.com/walrus-go/walrus/engine"
)

// TestDataChannelCarriesSmallAppends: small appends take the data channel
// (no AppendPipe request), large ones still take the Append RPC, and both
// land in order.
func TestDataChannelCarriesSmallAppends(t *testing.T) {
	c, _ := connect(t, memstore.New())
	id := engine.SegmentID{Topic: "dc"}
	for i := range 10 {
		first, err := c.Append(t.Context(), id, [][]byte{{byte(i)}, {}})
		if err != nil || first != uint64(2*i) {
			t.Fatalf("append %d: first=%d err=%v", i, first, err)
		}
	}
	big := bytes.Repeat([]byte("b"), ChunkBytes+1)
	if first, err := c.Append(t.Context(), id, [][]byte{big}); err != nil || first != 20 {
		t.Fatalf("big append: first=%d err=%v", first, err)
	}
	if c.data.dc == nil || c.appender.requests.Load() != 0 {
		t.Fatalf("data channel %v, %d AppendPipe requests: small appends did not use the data channel", c.data.dc, c.appender.requests.Load())
	}
	got, err := c.Read(t.Context(), id, 0, 100, 4<<20)
	if err != nil || len(got) != 21 || got[2][0] != 1 || len(got[3]) != 0 || !bytes.Equal(got[20], big) {
		t.Fatalf("read back %d entries, %v", len(got), err)
	}
}

func TestDataChannelConcurrentAppends(t *testing.T) {
	c, _ := connect(t, memstore.New())
	const writers, each = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			id := engine.SegmentID{Topic: "w", Segment: uint64(w)}
			for i := range each {
				if first, err := c.Append(t.Context(), id, [][]byte{{byte(i)}}); err != nil || first != uint64(i) {
					errs <- errors.Join(err, errors.New("wrong offset"))
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
}

// TestDataChannelRefusesWrongToken: a connection that does not present the
// token is closed without being served.
func TestDataChannelRefusesWrongToken(t *testing.T) {
	d, err := startDataServer(memstore.New(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	conn, err := net.Dial("unix", d.address())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(make([]byte, tokenBytes)); err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write(appendRequestFrame(nil, 1, "t", 0, [][]byte{[]byte("x")}))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	// Closed by the server: EOF, or a reset when our unread frame was
	// still in its buffer.
	if n, err := conn.Read(make([]byte, 64)); n != 0 || err == nil || (!errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("read %d bytes, err %v: want the connection closed", n, err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(appendRequestFrame(nil, 7, "logs", 3, [][]byte{[]byte("a"), {}, []byte("bc")})[4:])
	f.Add(appendRequestFrame(nil, 1, "", 0, nil)[4:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeRequest(body)
		if err != nil {
			return
		}
		again, err := decodeRequest(appendRequestFrame(nil, r.id, r.topic, r.segment, r.entries)[4:])
		if err != nil || again.id != r.id || again.topic != r.topic || again.segment != r.segment || len(again.entries) != len(r.entries) {
			t.Fatalf("round trip: %+v vs %+v (%v)", again, r, err)
		}
		for i := range r.entries {
			if !bytes.Equal(again.entries[i], r.entries[i]) {
				t.Fatalf("entry %d differs", i)
			}
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(appendResponseFrame(nil, dcResponse{id: 3, ok: true, first: 9})[4:])
	f.Add(appendResponseFrame(nil, dcResponse{id: 4, code: 9, reason: "SEALED", message: "segment is sealed"})[4:])
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeResponse(body)
		if err != nil {
			return
		}
		again, err := decodeResponse(appendResponseFrame(nil, r)[4:])
		if err != nil || again != r {
			t.Fatalf("round trip: %+v vs %+v (%v)", again, r, err)
		}
	})
}

// TestFrameWriterKeepsFramesWhole: concurrent writers' frames arrive whole
// and each exactly once, however the writes were combined.
func TestFrameWriterKeepsFramesWhole(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := &frameWriter{conn: a}
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				frame := appendResponseFrame(nil, dcResponse{id: uint64(g*each + i), ok: true, first: uint64(i)})
				if err := w.write(frame, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := map[uint64]bool{}
	var hdr [4]byte
	for len(seen) < writers*each {
		if _, err := io.ReadFull(b, hdr[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.LittleEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(b, body); err != nil {
			t.Fatal(err)
		}
		r, err := decodeResponse(body)
		if err != nil || seen[r.id] || r.first != r.id%each {
			t.Fatalf("frame %+v (err %v, seen before %v)", r, err, seen[r.id])
		}
		seen[r.id] = true
	}
	wg.Wait()
}

// TestDataChannelFramePoolBounded: the pool keeps at most dcFramesPooled
// buffers and never one over dcFramePooledBytesMax, so a burst of large
// batches cannot pin memory on the host.
func TestDataChannelFramePoolBounded(t *testing.T) {
	dc := &dataClient{frames: make(chan []byte, dcFramesPooled)}
	dc.putFrame(make([]byte, dcFramePooledBytesMax+1))
	if got := dc.getFrame(); got != nil {
		t.Fatalf("kept a %d-byte buffer over the %d-byte bound", cap(got), dcFramePooledBytesMax)
	}
	for range 2 * dcFramesPooled {
		dc.putFrame(make([]byte, 10))
	}
	if n := len(dc.frames); n != dcFramesPooled {
		t.Fatalf("pool holds %d buffers, want %d", n, dcFramesPooled)
	}
	if b := dc.getFrame(); b == nil || len(b) != 0 || cap(b) != 10 {
		t.Fatalf("reused buffer len=%d cap=%d, want an empty buffer of capacity 10", len(b), cap(b))
	}
}
