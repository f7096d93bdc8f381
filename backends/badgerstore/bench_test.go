package badgerstore

import (
	"bufio"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/engine/enginetest"
)

// benchOptions are the production defaults (64 MiB memtable, 1 MiB value
// threshold) with fewer memtables and a smaller block cache, to be a good
// neighbour on a shared machine; neither changes the append path.
func benchOptions(store engine.Options) Options {
	o := DefaultOptions()
	o.Store = store
	o.NumMemtables = 2
	o.BlockCacheSize = 32 << 20
	return o
}

// BenchmarkStore runs the shared enginetest benchmarks:
//
//	go test -run '^$' -bench BenchmarkStore -benchtime 2000x ./backends/badgerstore/
func BenchmarkStore(b *testing.B) {
	enginetest.Bench(b, enginetest.Harness{
		Open: func(_ testing.TB, dir string) (engine.SegmentStore, error) {
			return Open(dir, benchOptions(engine.DefaultOptions()))
		},
		OpenWith: func(_ testing.TB, dir string, opts engine.Options) (engine.SegmentStore, error) {
			return Open(dir, benchOptions(opts))
		},
	})
}

// BenchmarkRawWriteReference is the disk-speed reference for the append
// cases: the same 100-byte entries framed as length + CRC32C + payload,
// written sequentially through a 1 MiB bufio.Writer to a plain file, no
// fsync. Compare its entries/s with Append/100B/Batch128 from the same run.
func BenchmarkRawWriteReference(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	table := crc32.MakeTable(crc32.Castagnoli)
	payload := make([]byte, 100)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	var hdr [8]byte
	var n int64
	b.ReportAllocs()
	b.SetBytes(int64(len(hdr) + len(payload)))
	for b.Loop() {
		payload[0] = byte(n)
		binary.LittleEndian.PutUint32(hdr[0:], uint32(len(payload)))
		binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(payload, table))
		if _, err := w.Write(hdr[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(payload); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "entries/s")
}
