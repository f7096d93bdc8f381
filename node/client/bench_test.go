package client_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
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

var _ server.Handler = okHandler{}

// BenchmarkPipelinedPut measures 100-byte PUTs to a server whose handler
// answers OK, over loopback, with `depth` requests in flight per connection
// (Send/Flush on one goroutine, Recv on another). msgs/s is the figure.
func BenchmarkPipelinedPut(b *testing.B) {
	for _, tc := range []struct{ conns, depth int }{{1, 1}, {1, 64}, {16, 1}, {16, 64}} {
		b.Run(fmt.Sprintf("conns=%d/depth=%d", tc.conns, tc.depth), func(b *testing.B) {
			addr := startServer(b, okHandler{})
			clients := make([]*client.Client, tc.conns)
			for i := range clients {
				clients[i] = dial(b, addr, client.Options{})
			}
			put := protocol.Request{Command: protocol.CmdPut, Topic: "bench", Payload: bytes.Repeat([]byte("x"), 100)}
			b.SetBytes(100)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			errs := make(chan error, tc.conns)
			for i, c := range clients {
				n := b.N / tc.conns
				if i < b.N%tc.conns {
					n++
				}
				wg.Go(func() {
					if err := drive(c, put, n, tc.depth); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// drive keeps depth requests in flight on c until n replies are in.
func drive(c *client.Client, req protocol.Request, n, depth int) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sem := make(chan struct{}, depth)
	done := make(chan error, 1)
	go func() {
		for range n {
			r, err := c.Recv(ctx)
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
	for i := range n {
		select {
		case sem <- struct{}{}:
		case err := <-done:
			return fmt.Errorf("receiver stopped early: %v", err)
		}
		if err := c.Send(req); err != nil {
			return err
		}
		if len(sem) == depth || i == n-1 {
			if err := c.Flush(); err != nil {
				return err
			}
		}
	}
	return <-done
}
