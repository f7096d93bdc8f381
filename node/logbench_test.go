package node_test

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"testing"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/protocol"
)

// logBenchEntries is the size of the topic the log benchmarks read.
const logBenchEntries = 200_000

// startLogBench starts a 3-node in-process cluster holding one topic of
// logBenchEntries 100-byte entries and returns a client of a node that
// does not lead its open segment.
func startLogBench(b *testing.B) (*client.Client, string) {
	nodes := nodetest.StartCluster(b, 3, nil)
	ctx := context.Background()
	c := nodetest.Dial(b, nodes[0])
	const topic = "logbench"
	payload := make([]byte, 100)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	reqs := make([]protocol.Request, 500)
	for i := range reqs {
		reqs[i] = protocol.Request{Command: protocol.CmdPut, Topic: topic, Payload: payload}
	}
	for done := 0; done < logBenchEntries; done += len(reqs) {
		if _, err := c.Pipeline(ctx, reqs); err != nil {
			b.Fatal(err)
		}
	}
	leader := nodetest.State(b, c, topic).LeaderNode
	// WALRUS_BENCH_CPUPROFILE=<file> profiles the timed part only (the
	// setup writes the topic, which would dominate -cpuprofile).
	if path := os.Getenv("WALRUS_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { pprof.StopCPUProfile(); _ = f.Close() })
	}
	return nodetest.Dial(b, nodes[leader%3]), topic
}

// BenchmarkLogFetch replays a topic with FETCH pages of 1,000 entries from
// a node that is not its segment leader (one entry per op):
//
//	go test -run XXX -bench LogFetch -benchtime 400000x -cpuprofile cpu.out ./node/
func BenchmarkLogFetch(b *testing.B) {
	c, topic := startLogBench(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	off := uint64(0)
	for done := 0; done < b.N; {
		f, err := c.Fetch(ctx, topic, off, 1000)
		if err != nil {
			b.Fatal(err)
		}
		done += len(f.Entries)
		off = f.Next
		if off >= logBenchEntries {
			off = 0
		}
	}
}

// BenchmarkLogGroup reads a topic as a consumer group, READ and ACK of
// 1,000-entry pages by 4 consumers (one entry per op):
//
//	go test -run XXX -bench LogGroup -benchtime 200000x ./node/
func BenchmarkLogGroup(b *testing.B) {
	if b.N > logBenchEntries {
		b.Skipf("the topic holds %d entries: run with -benchtime %dx or less", logBenchEntries, logBenchEntries)
	}
	c0, topic := startLogBench(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	errs := make(chan error, 4)
	per := b.N / 4
	for k := range 4 {
		go func() {
			c := c0
			if k > 0 {
				var err error
				if c, err = client.Dial(ctx, c0.Addr(), client.Options{}); err != nil {
					errs <- err
					return
				}
				defer c.Close()
			}
			group := fmt.Sprintf("g%d", b.N)
			offs := make([]uint64, 0, 1000)
			for done := 0; done < per; {
				r, err := c.Read(ctx, group, topic, 1000, 0)
				if err != nil {
					errs <- err
					return
				}
				if len(r.Entries) == 0 {
					errs <- fmt.Errorf("group ran dry after %d", done)
					return
				}
				offs = offs[:0]
				for _, e := range r.Entries {
					offs = append(offs, e.Offset)
				}
				if err := c.Ack(ctx, group, topic, offs...); err != nil {
					errs <- err
					return
				}
				done += len(offs)
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRegisterPipelined creates topics with one connection
// pipelining 512 REGISTERs (one topic per op); the Raft leader batches
// concurrent creations into few entries:
//
//	go test -run XXX -bench RegisterPipelined -benchtime 5000x ./node/
func BenchmarkRegisterPipelined(b *testing.B) {
	nodes := nodetest.StartCluster(b, 3, nil)
	c := nodetest.Dial(b, nodes[1])
	reqs := make([]protocol.Request, 512)
	b.ResetTimer()
	for done := 0; done < b.N; done += len(reqs) {
		for i := range reqs {
			reqs[i] = protocol.Request{Command: protocol.CmdRegister, Topic: fmt.Sprintf("t-%d-%d", b.N, done+i)}
		}
		replies, err := c.Pipeline(context.Background(), reqs)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range replies {
			if r.Kind != protocol.ReplyOK {
				b.Fatal(r.String())
			}
		}
	}
}
