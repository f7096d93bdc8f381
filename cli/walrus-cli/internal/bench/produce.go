package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/walrus-go/walrus/node/protocol"
)

// Produce sends cfg.Messages verifiable messages of cfg.Size bytes, spread
// over cfg.Topics topics and cfg.Clients pipelined connections, and reports
// throughput and latency. Message seq goes to topic seq%Topics from client
// seq%Clients. It returns an error only when the run could not be carried
// out; ERR replies are counted in the report.
func Produce(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(true); err != nil {
		return nil, err
	}
	for cfg.Run == 0 {
		cfg.Run = rand.Uint32()
	}
	pipes, err := dialAll(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, p := range pipes {
			p.Close()
		}
	}()
	topics := make([]string, cfg.Topics)
	for i := range topics {
		topics[i] = TopicName(cfg.TopicPrefix, i)
	}
	if err := registerTopics(pipes[0], topics); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWatch := closeOnCancel(ctx, pipes)
	defer stopWatch()

	var (
		acked atomic.Uint64
		tally errorTally
	)
	elapsed, cpu, h, err := runClients(&cfg, acked.Load, func(c int, h *Histogram) error {
		return produceClient(ctx, &cfg, c, pipes[c], topics, h, &acked, &tally)
	})
	if err != nil {
		return nil, err
	}
	r := &Report{
		Mode: "produce", Run: fmt.Sprintf("%08x", cfg.Run), Addrs: cfg.Addrs, Clients: cfg.Clients,
		Pipeline: cfg.Pipeline, Topics: cfg.Topics, Size: cfg.Size,
		Messages: acked.Load(), Bytes: acked.Load() * uint64(cfg.Size),
		Errors: tally.n.Load(), FirstError: tally.first,
	}
	r.finish(h, elapsed, cpu)
	return r, nil
}

// registerTopics creates the topics up front (pipelined on one connection)
// so that the clients do not all race to auto-create them.
func registerTopics(p Pipe, topics []string) error {
	for _, t := range topics {
		if err := p.Send(protocol.Request{Command: protocol.CmdRegister, Topic: t}); err != nil {
			return fmt.Errorf("bench: register %s: %w", t, err)
		}
	}
	if err := p.Flush(); err != nil {
		return fmt.Errorf("bench: register topics: %w", err)
	}
	for _, t := range topics {
		rep, err := p.Recv()
		if err != nil {
			return fmt.Errorf("bench: register %s: %w", t, err)
		}
		if rep.Kind != protocol.ReplyOK {
			return fmt.Errorf("bench: register %s: %s", t, rep.Encode())
		}
	}
	return nil
}

func produceClient(ctx context.Context, cfg *Config, c int, p Pipe, topics []string, h *Histogram, acked *atomic.Uint64, tally *errorTally) error {
	clients := uint64(cfg.Clients)
	if uint64(c) >= cfg.Messages {
		return nil
	}
	count := (cfg.Messages-1-uint64(c))/clients + 1
	// One payload buffer per window slot: a batch never exceeds the depth,
	// and Pipe.Send may keep a reference until the Flush that follows it.
	bufs := make([][]byte, cfg.Pipeline)
	for i := range bufs {
		bufs[i] = make([]byte, cfg.Size)
	}
	d := newDriver(p, cfg.Pipeline, h)
	var i uint64 // next message of this client
	fill := func(free, _ int) (bool, error) {
		for j := 0; j < free && i < count; j++ {
			seq := uint64(c) + i*clients
			payload := EncodePayload(bufs[j], Message{Run: cfg.Run, Total: cfg.Messages, Seq: seq})
			if err := d.send(protocol.Request{Command: protocol.CmdPut, Topic: topics[seq%uint64(len(topics))], Payload: payload}, 0); err != nil {
				return false, err
			}
			i++
		}
		return i < count, nil
	}
	err := d.run(ctx, fill, func(rep protocol.Reply, _ int32) {
		if rep.Kind == protocol.ReplyOK {
			acked.Add(1)
		} else {
			tally.add(rep.String())
		}
	})
	if ctx.Err() != nil {
		return ctx.Err() // the connection was closed because the run was cancelled
	}
	if err != nil {
		return fmt.Errorf("bench: client %d: %w", c, err)
	}
	return nil
}
