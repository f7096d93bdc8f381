package client_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/server"
)

type okHandler struct{}

func (okHandler) Handle(_ context.Context, reqs []protocol.Request) []protocol.Reply {
	out := make([]protocol.Reply, len(reqs))
	for i := range out {
		out[i] = protocol.OK()
	}
	return out
}

// BenchmarkPipelinedPut measures one connection sending 100-byte PUTs to a
// server whose handler answers OK, keeping `depth` requests in flight
// (Send/Flush on one goroutine, Recv on another). msgs/s is the figure.
func BenchmarkPipelinedPut(b *testing.B) {
	for _, depth := range []int{1, 64} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			addr := startServer(b, okHandler{})
			c := dial(b, addr, client.Options{})
			put := protocol.Request{Command: protocol.CmdPut, Topic: "bench", Payload: bytes.Repeat([]byte("x"), 100)}
			b.SetBytes(100)
			b.ReportAllocs()
			sem := make(chan struct{}, depth)
			done := make(chan error, 1)
			n := b.N
			go func() {
				for range n {
					r, err := c.Recv(context.Background())
					if err == nil && r.Kind != protocol.ReplyOK {
						err = fmt.Errorf("reply %v", r)
					}
					if err != nil {
						done <- err
						return
					}
					<-sem
				}
				done <- nil
			}()
			b.ResetTimer()
			for i := range n {
				select {
				case sem <- struct{}{}:
				case err := <-done:
					b.Fatalf("receiver stopped early: %v", err)
				}
				if err := c.Send(put); err != nil {
					b.Fatal(err)
				}
				if len(sem) == depth || i == n-1 {
					if err := c.Flush(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

var _ server.Handler = okHandler{}
