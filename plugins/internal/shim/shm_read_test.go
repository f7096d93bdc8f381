package shim

import (
	"testing"
)

func FuzzDecodeReadRequest(f *testing.F) {
	f.Add(appendReadRequestFrame(nil, dcReadRequest{id: 1, segment: 2, topic: "t", offset: 3, maxEntries: 4, maxBytes: 5})[4:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		q, err := decodeReadRequest(body)
		if err != nil {
			return
		}
		again, err := decodeReadRequest(appendReadRequestFrame(nil, q)[4:])
		if err != nil || again != q {
			t.Fatalf("round trip: %+v -> %+v, %v", q, again, err)
		}
	})
}

func FuzzDecodeReadResponse(f *testing.F) {
	f.Add(appendReadResponseFrame(make([]byte, 0, 256), 0, [][]byte{[]byte("abc"), {}})[4:], uint64(2), uint64(3))
	f.Add(appendResponseFrame(nil, dcResponse{id: 0, code: 5, reason: "NOT_FOUND", message: "m"})[4:], uint64(1), uint64(1))
	f.Fuzz(func(t *testing.T, body []byte, maxEntries, maxBytes uint64) {
		maxEntries, maxBytes = min(maxEntries, 1<<16), min(maxBytes, 1<<20)
		res, err := decodeReadResponse(body, 0, maxEntries, maxBytes, 1<<20)
		if err != nil || res.tooLarge || res.remote != nil || res.corrupt != nil {
			return
		}
		var total uint64
		for _, e := range res.entries {
			total += uint64(len(e))
		}
		if uint64(len(res.entries)) > maxEntries || (len(res.entries) > 1 && total > maxBytes) {
			t.Fatalf("accepted %d entries, %d bytes over the bounds %d/%d", len(res.entries), total, maxEntries, maxBytes)
		}
	})
}
