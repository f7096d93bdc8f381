package bench

import (
	"context"
	"testing"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/server/servertest"
)

// echoPipe adapts node/client to Pipe, as walrus-cli does.
type echoPipe struct{ c *client.Client }

func (p echoPipe) Send(req protocol.Request) error { return p.c.Send(req) }
func (p echoPipe) Flush() error                    { return p.c.Flush() }
func (p echoPipe) Close() error                    { return p.c.Close() }
func (p echoPipe) Recv() (protocol.Reply, error)   { return p.c.Recv(context.Background()) }

func dialEcho(ctx context.Context, addr string) (Pipe, error) {
	c, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		return nil, err
	}
	return echoPipe{c: c}, nil
}

// BenchmarkProduceEcho measures the generator against the in-process echo
// server: b.N messages of 100 bytes over 16 pipelined connections. The
// msgs/s metric is what README compares with the cluster's figure.
func BenchmarkProduceEcho(b *testing.B) {
	e, err := servertest.NewEcho()
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	cfg := Config{Addrs: []string{e.Addr()}, Clients: 16, Messages: uint64(max(b.N, 16)), Size: 100,
		Topics: 4, TopicPrefix: "bench", Pipeline: 64, Dial: dialEcho}
	b.SetBytes(100)
	b.ResetTimer()
	r, err := Produce(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if r.Messages != cfg.Messages || r.Errors != 0 {
		b.Fatalf("report %+v", r)
	}
	b.ReportMetric(r.MsgsPerSec, "msgs/s")
	b.ReportMetric(r.Latency.P99*1000, "p99-µs")
}
