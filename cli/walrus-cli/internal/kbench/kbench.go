// Package kbench drives a node's Kafka listener for walrus-cli bench
// (--kafka): a franz-go producer and consumer writing and verifying the
// same payloads, with the same report, as the Walrus-protocol runs of
// package bench. Topic i is bench topic i as a one-partition Kafka topic.
package kbench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/walrus-go/walrus/cli/walrus-cli/internal/bench"
)

// noDial satisfies bench.Config's check: the Kafka runs dial with kgo.
func noDial(context.Context, string) (bench.Pipe, error) {
	return nil, errors.New("kbench: the Kafka runs do not use bench pipes")
}

func prepare(cfg *bench.Config, produce bool) ([]string, error) {
	if cfg.Dial == nil {
		cfg.Dial = noDial
	}
	if err := cfg.Validate(produce); err != nil {
		return nil, err
	}
	topics := make([]string, cfg.Topics)
	for i := range topics {
		topics[i] = bench.TopicName(cfg.TopicPrefix, i)
	}
	return topics, nil
}

func client(cfg *bench.Config, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{kgo.SeedBrokers(cfg.Addrs...)}
	if cfg.TLS != nil {
		base = append(base, kgo.DialTLSConfig(cfg.TLS))
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kbench: kafka client for %v: %w", cfg.Addrs, err)
	}
	return cl, nil
}

// Codecs are the producer batch compressions --kafka-compression takes.
var Codecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

// Options are the Kafka producer's settings.
type Options struct {
	// Codec compresses batches: a key of Codecs ("" = none).
	Codec string
	// NotIdempotent turns franz-go's default idempotent producer off.
	NotIdempotent bool
}

// Produce writes cfg.Messages verifiable payloads over cfg.Clients
// franz-go producers (acks=all, default batching, at most cfg.Pipeline
// records buffered per producer), creating missing topics first.
func Produce(ctx context.Context, cfg bench.Config, o Options) (*bench.Report, error) {
	codec := o.Codec
	topics, err := prepare(&cfg, true)
	if err != nil {
		return nil, err
	}
	if codec == "" {
		codec = "none"
	}
	cc, ok := Codecs[codec]
	if !ok {
		return nil, fmt.Errorf("kbench: unknown compression %q (none, gzip, snappy, lz4, zstd)", codec)
	}
	for cfg.Run == 0 {
		cfg.Run = rand.Uint32()
	}
	if err := createTopics(ctx, &cfg, topics); err != nil {
		return nil, err
	}
	var (
		acked, failed atomic.Uint64
		firstErr      sync.Once
		first         string
	)
	elapsed, cpu, h, err := bench.RunClients(&cfg, acked.Load, func(c int, h *bench.Histogram) error {
		opts := []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(max(cfg.Pipeline, 1)), kgo.ProducerBatchCompression(cc)}
		if o.NotIdempotent {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
		cl, err := client(&cfg, opts...)
		if err != nil {
			return err
		}
		defer cl.Close()
		var hmu sync.Mutex
		for seq := uint64(c); seq < cfg.Messages && ctx.Err() == nil; seq += uint64(cfg.Clients) {
			buf := bench.EncodePayload(make([]byte, cfg.Size), bench.Message{Run: cfg.Run, Total: cfg.Messages, Seq: seq})
			start := time.Now()
			cl.Produce(ctx, &kgo.Record{Topic: topics[seq%uint64(len(topics))], Value: buf}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
					firstErr.Do(func() { first = err.Error() })
					return
				}
				acked.Add(1)
				hmu.Lock()
				h.Record(time.Since(start))
				hmu.Unlock()
			})
		}
		return cl.Flush(ctx)
	})
	if err != nil {
		return nil, err
	}
	r := &bench.Report{
		Mode: "produce", Run: fmt.Sprintf("%08x", cfg.Run), Addrs: cfg.Addrs, Clients: cfg.Clients,
		Pipeline: cfg.Pipeline, Topics: cfg.Topics, Size: cfg.Size,
		Messages: acked.Load(), Bytes: acked.Load() * uint64(cfg.Size), Errors: failed.Load(), FirstError: first,
	}
	r.Finish(h, elapsed, cpu)
	return r, nil
}

func createTopics(ctx context.Context, cfg *bench.Config, topics []string) error {
	cl, err := client(cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, 1, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("kbench: create topics: %w", err)
	}
	for _, t := range resp.Sorted() {
		if t.Err != nil && !errors.Is(t.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kbench: create topic %s: %w", t.Topic, t.Err)
		}
	}
	return nil
}

// Consume reads the bench topics from the start with cfg.Clients franz-go
// consumers (client c reads topics t with t%Clients == c) until the run
// is verified, cfg.Messages payloads were read, or no topic returned
// anything for cfg.DrainWait. Latency is per poll that returned records.
func Consume(ctx context.Context, cfg bench.Config) (*bench.Report, error) {
	topics, err := prepare(&cfg, false)
	if err != nil {
		return nil, err
	}
	if cfg.DrainWait <= 0 {
		cfg.DrainWait = time.Second
	}
	cfg.Clients = min(cfg.Clients, len(topics))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v := bench.NewVerifier(cfg.Run)
	var read, bytes, empty atomic.Uint64
	elapsed, cpu, h, err := bench.RunClients(&cfg, read.Load, func(c int, h *bench.Histogram) error {
		var mine []string
		for t := c; t < len(topics); t += cfg.Clients {
			mine = append(mine, topics[t])
		}
		cl, err := client(&cfg, kgo.ConsumeTopics(mine...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxWait(min(cfg.DrainWait, 500*time.Millisecond)), kgo.FetchMaxPartitionBytes(8<<20))
		if err != nil {
			return err
		}
		defer cl.Close()
		last := time.Now()
		for ctx.Err() == nil {
			select {
			case <-v.Done():
				return nil
			default:
			}
			if cfg.Messages > 0 && read.Load() >= cfg.Messages {
				cancel()
				return nil
			}
			pctx, pcancel := context.WithTimeout(ctx, cfg.DrainWait)
			start := time.Now()
			fs := cl.PollFetches(pctx)
			pcancel()
			n := 0
			fs.EachRecord(func(r *kgo.Record) {
				n++
				read.Add(1)
				bytes.Add(uint64(len(r.Value)))
				if !cfg.NoVerify {
					v.Add(r.Value)
				}
			})
			if n == 0 {
				empty.Add(1)
				if time.Since(last) >= cfg.DrainWait {
					return nil // drained
				}
				continue
			}
			h.Record(time.Since(start))
			last = time.Now()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	run, ver := v.Result(&cfg, empty.Load())
	r := &bench.Report{
		Mode: "consume", Run: fmt.Sprintf("%08x", run), Addrs: cfg.Addrs, Clients: cfg.Clients,
		Pipeline: cfg.Pipeline, Topics: cfg.Topics, Messages: read.Load(), Bytes: bytes.Load(), Verify: ver,
	}
	if cfg.NoVerify {
		r.Verify = &bench.Verify{Skipped: true, Empty: empty.Load()}
	}
	if r.Messages > 0 {
		r.Size = int(r.Bytes / r.Messages)
	}
	r.Finish(h, elapsed, cpu)
	return r, nil
}
