package shim

import (
	"errors"
	"testing"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/walrus-go/walrus/backends/memstore"
	"github.com/walrus-go/walrus/engine"
	pb "github.com/walrus-go/walrus/plugins/proto/segmentstore/v1"
)

// oldServer is a plugin built before AppendPipe existed.
type oldServer struct{ *Server }

func (oldServer) AppendPipe(pb.SegmentStore_AppendPipeServer) error {
	return status.Error(codes.Unimplemented, "method AppendPipe not implemented")
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
	if !c.pipes.unsupported {
		t.Fatal("client did not notice the plugin lacks AppendPipe")
	}
	if info, err := store.Stat(t.Context(), id); err != nil || info.Entries != 3 {
		t.Fatalf("store holds %+v (%v), want 3 entries (no duplicate from the retry)", info, err)
	}
}

func TestPipeSurvivesStoreError(t *testing.T) {
	c, _ := connect(t, memstore.New())
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
	c.pipes.mu.Lock()
	open := len(c.pipes.open)
	c.pipes.mu.Unlock()
	if open != 1 {
		t.Fatalf("%d pipes open, want the one pipe reused", open)
	}
}
