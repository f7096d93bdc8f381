package mmapstore

import "testing"

func TestIndex(t *testing.T) {
	var ix index
	const n = 3*indexChunkLen + 17
	want := make([]uint64, n)
	pos := uint64(dataStart)
	for i := range want {
		want[i] = pos
		ix.add(pos)
		pos += uint64(8 + i%50)
		if i == indexChunkLen+5 {
			pos += 5 << 30 // a > 4 GiB jump forces the chunk to go wide
		}
	}
	check := func(n int) {
		t.Helper()
		if ix.n != uint64(n) {
			t.Fatalf("n = %d, want %d", ix.n, n)
		}
		for i := range n {
			if got := ix.get(uint64(i)); got != want[i] {
				t.Fatalf("get(%d) = %d, want %d", i, got, want[i])
			}
		}
	}
	check(n)
	if ix.chunks[1].wide == nil || ix.chunks[0].wide != nil {
		t.Fatal("chunk 1 should be wide, chunk 0 narrow")
	}
	ix.truncate(indexChunkLen + 3)
	check(indexChunkLen + 3)
	ix.truncate(indexChunkLen)
	check(indexChunkLen)
	ix.add(want[indexChunkLen])
	check(indexChunkLen + 1)
}
