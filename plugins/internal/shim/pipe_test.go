package shim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/walrus-go/walrus/backends/memstore"
	"github.com/walrus-go/walrus/engine"
	pb "github.com/walrus-go/walrus/plugins/proto/segmentstore/v1"
)

// oldServer is a plugin built before AppendPipe and the data channel existed.
type oldServer struct{ *Server }

func (oldServer) AppendPipe(pb.SegmentStore_AppendPipeServer) error {
	return status.Error(codes.Unimplemented, "method AppendPipe not implemented")
}

func (oldServer) OpenDataChannel(context.Context, *pb.OpenDataChannelRequest) (*pb.OpenDataChannelResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method OpenDataChannel not implemented")
}

// pipeOnlyServer is a plugin without the data channel: small appends take
// AppendPipe.
type pipeOnlyServer struct{ *Server }

func (pipeOnlyServer) OpenDataChannel(context.Context, *pb.OpenDataChannelRequest) (*pb.OpenDataChannelResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method OpenDataChannel not implemented")
}

// connectPipeOnly serves store without the data channel.
func connectPipeOnly(t *testing.T, store engine.SegmentStore) *Client {
	t.Helper()
	conn, _ := plugin.TestGRPCConn(t, func(s *grpc.Server) {
		pb.RegisterSegmentStoreServer(s, pipeOnlyServer{NewServer(store, engine.Limits{})})
	})
	t.Cleanup(func() { _ = conn.Close() })
	c := NewClient(conn, ClientOptions{})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestAppendFallsBackWithoutPipe(t *testing.T) {
	store := memstore.New()
	conn, _ := plugin.TestGRPCConn(t, func(s *grpc.Server) {
		pb.RegisterSegmentStoreServer(s, oldServer{NewServer(store, engine.Limits{})})
	})
	t.Cleanup(func() { _ = conn.Close() })
	c := NewClient(conn, ClientOptions{})
	t.Cleanup(func() { _ = c.Close() })
	id := engine.SegmentID{Topic: "old"}
	for i := range 3 {
		first, err := c.Append(t.Context(), id, [][]byte{[]byte("x")})
		if err != nil || first != uint64(i) {
			t.Fatalf("append %d: first=%d err=%v", i, first, err)
		}
	}
	if !c.appender.unsupported.Load() {
		t.Fatal("client did not notice the plugin lacks AppendPipe")
	}
	if info, err := store.Stat(t.Context(), id); err != nil || info.Entries != 3 {
		t.Fatalf("store holds %+v (%v), want 3 entries (no duplicate from the retry)", info, err)
	}
}

func TestPipeSurvivesStoreError(t *testing.T) {
	c := connectPipeOnly(t, memstore.New())
	sealed := engine.SegmentID{Topic: "p", Segment: 1}
	if _, err := c.Append(t.Context(), sealed, [][]byte{[]byte("a")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Seal(t.Context(), sealed); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(t.Context(), sealed, [][]byte{[]byte("b")}); !errors.Is(err, engine.ErrSealed) {
		t.Fatalf("append to sealed: %v, want ErrSealed", err)
	}
	if _, err := c.Append(t.Context(), engine.SegmentID{Topic: "p", Segment: 2}, [][]byte{[]byte("c")}); err != nil {
		t.Fatalf("append after a store error: %v", err)
	}
	if n := c.appender.opened.Load(); n > pipeWorkers {
		t.Fatalf("%d pipes opened, want at most one per worker", n)
	}
}

// TestConcurrentAppendsCoalesce: many concurrent small appends share round
// trips, and each still gets its own, correct offset.
func TestConcurrentAppendsCoalesce(t *testing.T) {
	c := connectPipeOnly(t, memstore.New())
	const writers, each = 32, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			id := engine.SegmentID{Topic: fmt.Sprintf("w%d", w)}
			for i := range each {
				first, err := c.Append(t.Context(), id, [][]byte{fmt.Appendf(nil, "%d-%d", w, i)})
				if err != nil || first != uint64(i) {
					errs <- fmt.Errorf("writer %d append %d: first=%d err=%v", w, i, first, err)
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
	for w := range writers {
		got, err := c.Read(t.Context(), engine.SegmentID{Topic: fmt.Sprintf("w%d", w)}, 0, each+1, 1<<20)
		if err != nil || len(got) != each || string(got[each-1]) != fmt.Sprintf("%d-%d", w, each-1) {
			t.Fatalf("writer %d reads back %d entries, %v", w, len(got), err)
		}
	}
	reqs, batches := c.appender.requests.Load(), c.appender.batches.Load()
	t.Logf("%d appends in %d AppendPipe requests", batches, reqs)
	if batches != writers*each || reqs >= batches {
		t.Fatalf("%d appends in %d requests: want all appends, fewer requests", batches, reqs)
	}
}

// TestCoalescedRequestStaysUnderTheMessageLimit: batches of many empty
// entries cost wire bytes for their lengths; a coalesced request must stay
// under gRPC's default 4 MiB receive limit however full the queue is.
func TestCoalescedRequestStaysUnderTheMessageLimit(t *testing.T) {
	a := newAppender(nil)
	empty := make([][]byte, chunkSizesMax) // shared: the batches are only encoded
	for i := range maxCoalesceBatches + 16 {
		entries := empty
		if i >= maxCoalesceBatches {
			entries = [][]byte{make([]byte, ChunkBytes-300)}
		}
		var total uint64
		for _, e := range entries {
			total += uint64(len(e))
		}
		a.queue <- newPending(t.Context(), "append", engine.SegmentID{Topic: strings.Repeat("t", engine.MaxTopicBytes), Segment: 1 << 60}, entries, total)
	}
	first := <-a.queue
	for first != nil {
		group, carry := a.takeGroup(first)
		req := &pb.AppendPipeRequest{}
		for _, pd := range group {
			req.Batches = append(req.Batches, pd.batch)
		}
		if n := proto.Size(req); n > 4<<20-1024 {
			t.Fatalf("coalesced request of %d batches is %d bytes on the wire", len(group), n)
		}
		first = carry
		if first == nil && len(a.queue) > 0 {
			first = <-a.queue
		}
	}
}
