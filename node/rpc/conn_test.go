package rpc

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// TestWriterBuffersNeverAlias: after a batch too large to keep (over
// 4 MiB), frames queued while another batch is being written must land in
// their own buffer; before the fix, spare still pointed at the array being
// filled, so a later batch was written while enqueuers appended to it
// (a data race under -race, torn frames without).
func TestWriterBuffersNeverAlias(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	w := newWriter(client)
	stop := make(chan struct{})
	var runWG sync.WaitGroup
	runWG.Add(1)
	go func() { defer runWG.Done(); w.run(stop) }()
	defer func() { close(stop); runWG.Wait() }()

	const small = 400
	big := bytes.Repeat([]byte{7}, 5<<20)
	var want sync.Map
	want.Store(uint64(0), big)
	first := []byte("first, small: its buffer becomes the spare")
	want.Store(uint64(1<<40), first)
	go func() {
		_ = w.enqueue(1<<40, 1, first)
		_ = w.enqueue(0, 1, big)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range small / 4 {
					id := uint64(1 + g*small/4 + i)
					p := fmt.Appendf(nil, "frame %d %s", id, bytes.Repeat([]byte{byte(id)}, int(id%97)))
					want.Store(id, p)
					_ = w.enqueue(id, 1, p)
				}
			}()
		}
		wg.Wait()
	}()
	// A torn stream would leave the reader waiting for a length that
	// never comes: bound it.
	_ = server.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(server)
	var hdr [headerBytes]byte
	for n := 0; n < small+2; n++ {
		id, _, payload, err := readFrame(r, &hdr)
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		exp, ok := want.Load(id)
		if !ok || !bytes.Equal(payload, exp.([]byte)) {
			t.Fatalf("frame id %d arrived torn (%d bytes)", id, len(payload))
		}
	}
}
