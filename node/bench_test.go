package node_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/protocol"
)

// BenchmarkPut measures PUT throughput of 16 clients against an in-process
// 3-node cluster (memstore), 100-byte payloads, sent to the segment leader
// (direct) or to another node (forwarded), one request in flight per client
// (sync) or 64 (pipelined). Run with e.g.
//
//	go test -run XXX -bench BenchmarkPut -benchtime 20000x ./node/
func BenchmarkPut(b *testing.B) {
	nodes := nodetest.StartCluster(b, 3, nil)
	ctx := context.Background()
	c := nodetest.Dial(b, nodes[0])
	if err := c.Register(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	leader := nodetest.State(b, c, "bench").LeaderNode
	payload := make([]byte, 100)
	for _, route := range []string{"direct", "forwarded"} {
		target := nodes[leader-1]
		if route == "forwarded" {
			target = nodes[leader%3]
		}
		for _, inflight := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/inflight=%d", route, inflight), func(b *testing.B) {
				const clients = 16
				conns := make([]*client.Client, clients)
				for i := range conns {
					conns[i] = nodetest.Dial(b, target)
				}
				per := max(b.N/clients, 1)
				b.SetBytes(int64(len(payload)))
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for _, cc := range conns {
					wg.Add(1)
					go func() {
						defer wg.Done()
						reqs := make([]protocol.Request, inflight)
						for i := range reqs {
							reqs[i] = protocol.Request{Command: protocol.CmdPut, Topic: "bench", Payload: payload}
						}
						for done := 0; done < per; done += inflight {
							replies, err := cc.Pipeline(ctx, reqs)
							if err != nil {
								b.Error(err)
								return
							}
							for _, r := range replies {
								if r.IsErr() {
									b.Error(r.String())
									return
								}
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(per*clients)/time.Since(start).Seconds(), "msgs/s")
			})
		}
	}
}

// BenchmarkRegister measures Raft metadata proposals: 16 clients each
// creating new topics through a follower (forwarded to the Raft leader).
func BenchmarkRegister(b *testing.B) {
	nodes := nodetest.StartCluster(b, 3, nil)
	leader := nodetest.RaftLeader(b, nodes)
	target := nodes[leader.ID()%3]
	clients := 16
	if v, err := strconv.Atoi(os.Getenv("WALRUS_BENCH_CLIENTS")); err == nil && v > 0 {
		clients = v
	}
	conns := make([]*client.Client, clients)
	for i := range conns {
		conns[i] = nodetest.Dial(b, target)
	}
	per := max(b.N/clients, 1)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for ci, cc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if err := cc.Register(context.Background(), fmt.Sprintf("reg-%d-%d", ci, i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(per*clients)/time.Since(start).Seconds(), "registers/s")
}
