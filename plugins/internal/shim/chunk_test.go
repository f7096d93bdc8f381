package shim

import (
	"bytes"
	"testing"
)

func TestChunkRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		entries [][]byte
	}{
		{"none", nil},
		{"one empty", [][]byte{{}}},
		{"small", [][]byte{[]byte("a"), []byte("bc"), {}}},
		{"exactly one chunk", [][]byte{bytes.Repeat([]byte("x"), ChunkBytes)}},
		{"split entry", [][]byte{[]byte("hd"), bytes.Repeat([]byte("y"), 2*ChunkBytes+5), []byte("tl")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var total uint64
			for _, e := range tt.entries {
				total += uint64(len(e))
			}
			asm, err := newAssembler(uint64(len(tt.entries)), total, 1<<20, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			chunks := 0
			ch := newChunker(int(total), func(sizes []uint32, data []byte) error {
				chunks++
				if len(data) > ChunkBytes {
					t.Fatalf("chunk of %d bytes", len(data))
				}
				return asm.add(sizes, data)
			})
			for _, e := range tt.entries {
				if err := ch.add(e); err != nil {
					t.Fatal(err)
				}
			}
			if err := ch.close(); err != nil {
				t.Fatal(err)
			}
			if chunks == 0 {
				t.Fatal("no chunk emitted")
			}
			got, err := asm.finish()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.entries) {
				t.Fatalf("%d entries, want %d", len(got), len(tt.entries))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.entries[i]) || cap(got[i]) != len(got[i]) {
					t.Fatalf("entry %d differs or has spare capacity", i)
				}
			}
		})
	}
}

func TestAssemblerRejects(t *testing.T) {
	if _, err := newAssembler(10, 0, 5, 100); err == nil {
		t.Error("announced entries over the bound accepted")
	}
	if _, err := newAssembler(1, 101, 5, 100); err == nil {
		t.Error("announced bytes over the bound accepted")
	}
	asm, _ := newAssembler(2, 4, 5, 100)
	if err := asm.add([]uint32{1, 2, 3}, nil); err == nil {
		t.Error("more sizes than announced accepted")
	}
	asm, _ = newAssembler(2, 4, 5, 100)
	if err := asm.add([]uint32{1, 2}, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := asm.finish(); err == nil {
		t.Error("short stream accepted")
	}
	asm, _ = newAssembler(2, 4, 5, 100)
	if err := asm.add([]uint32{1, 2}, []byte("abcd")); err != nil {
		t.Fatal(err)
	}
	if _, err := asm.finish(); err == nil {
		t.Error("sizes not summing to the data accepted")
	}
}
