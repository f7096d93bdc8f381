package mmapstore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/walrus-go/walrus/backends/mmapstore"
	"github.com/walrus-go/walrus/engine"
)

func Example() {
	dir, err := os.MkdirTemp("", "mmapstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	opts := mmapstore.DefaultOptions()
	opts.Store.Durability = engine.DurabilityAlways // ack after fsync, group commit
	s, err := mmapstore.Open(dir, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	id := engine.SegmentID{Topic: "orders", Segment: 0}
	first, err := s.Append(ctx, id, [][]byte{[]byte("a"), []byte("b")})
	if err != nil {
		log.Fatal(err)
	}
	entries, err := s.Read(ctx, id, first, 10, 1<<20)
	if err != nil {
		log.Fatal(err)
	}
	info, err := s.Seal(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("first=%d read=%q entries=%d sealed=%v\n", first, entries, info.Entries, info.Sealed)
	// Output: first=0 read=["a" "b"] entries=2 sealed=true
}
