package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
)

// window tracks one connection's requests in flight. The writer takes a
// token before each Send (tokens has the pipeline depth as capacity, so a
// full channel is the back-pressure) and, once the request is sent, tells
// the reader about it through inflight; the reader gives the token back after
// the reply. A request is announced only after Send because the client
// refuses a Recv for a request it has not been given yet.
//
// Send times live in a ring of twice the depth: the writer is at most depth
// requests ahead of the reader, so it never overwrites a time the reader has
// not read yet, and nothing is allocated per request.
type window struct {
	tokens   chan struct{}
	inflight chan int32 // topic index of each sent request, in send order
	sentNs   []atomic.Int64
	base     time.Time
}

func newWindow(depth int) *window {
	return &window{
		tokens:   make(chan struct{}, depth),
		inflight: make(chan int32, depth),
		sentNs:   make([]atomic.Int64, 2*depth),
		base:     time.Now(),
	}
}

func (w *window) stamp(i uint64) { w.sentNs[i%uint64(len(w.sentNs))].Store(int64(time.Since(w.base))) }

func (w *window) latency(i uint64) time.Duration {
	return time.Since(w.base) - time.Duration(w.sentNs[i%uint64(len(w.sentNs))].Load())
}

// acquire reserves a slot for one more request. It flushes the pipe before
// it would block: requests are written in batches of up to the pipeline
// depth, which is what makes pipelining cheap, and never sit unflushed while
// the writer waits.
func (w *window) acquire(ctx context.Context, p Pipe) error {
	select {
	case w.tokens <- struct{}{}:
		return nil
	default:
	}
	if err := p.Flush(); err != nil {
		return err
	}
	select {
	case w.tokens <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sent announces a request that Send accepted; it never blocks because the
// writer holds a token for it.
func (w *window) sent(topic int32) { w.inflight <- topic }

// done gives back the token of a request whose reply was read.
func (w *window) done() { <-w.tokens }

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
		acked  atomic.Uint64
		tally  errorTally
		hists  = make([]*Histogram, cfg.Clients)
		errs   = make([]error, cfg.Clients)
		wg     sync.WaitGroup
		progWG sync.WaitGroup
		stop   = make(chan struct{})
	)
	progressLoop(&cfg, acked.Load, stop, &progWG)
	start := time.Now()
	for c := range cfg.Clients {
		hists[c] = NewHistogram()
		wg.Go(func() {
			errs[c] = produceClient(ctx, &cfg, c, pipes[c], topics, hists[c], &acked, &tally)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	progWG.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	h := NewHistogram()
	for _, x := range hists {
		h.Merge(x)
	}
	r := &Report{
		Mode: "produce", Run: fmt.Sprintf("%08x", cfg.Run), Addrs: cfg.Addrs, Clients: cfg.Clients,
		Pipeline: cfg.Pipeline, Topics: cfg.Topics, Size: cfg.Size,
		Messages: acked.Load(), Bytes: acked.Load() * uint64(cfg.Size),
		Errors: tally.n.Load(), FirstError: tally.first,
	}
	r.finish(h, elapsed)
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newWindow(cfg.Pipeline)
	// A payload buffer is reused once its request's reply is in: the ring is
	// as long as the send-time ring, for the same reason.
	bufs := make([][]byte, len(w.sentNs))
	for i := range bufs {
		bufs[i] = make([]byte, cfg.Size)
	}

	var readErr error
	var rwg sync.WaitGroup
	rwg.Go(func() {
		var i uint64
		for range w.inflight {
			rep, err := p.Recv()
			if err != nil {
				if ctx.Err() != nil { // closed because the run was cancelled
					readErr = ctx.Err()
					return
				}
				readErr = fmt.Errorf("bench: client %d: read reply %d: %w", c, i, err)
				cancel()
				p.Close()
				return
			}
			h.Record(w.latency(i))
			w.done()
			if rep.Kind == protocol.ReplyOK {
				acked.Add(1)
			} else {
				tally.add(rep.String())
			}
			i++
		}
	})

	var writeErr error
	for i := range count {
		seq := uint64(c) + i*clients
		if err := w.acquire(ctx, p); err != nil {
			writeErr = err
			break
		}
		slot := i % uint64(len(bufs))
		payload := EncodePayload(bufs[slot], Message{Run: cfg.Run, Total: cfg.Messages, Seq: seq})
		w.stamp(i)
		if err := p.Send(protocol.Request{Command: protocol.CmdPut, Topic: topics[seq%uint64(len(topics))], Payload: payload}); err != nil {
			writeErr = err
			break
		}
		w.sent(0)
	}
	if writeErr == nil {
		writeErr = p.Flush()
	}
	if writeErr != nil {
		p.Close() // unblocks the reader
	}
	close(w.inflight)
	rwg.Wait()
	if readErr != nil {
		return readErr
	}
	if writeErr != nil && ctx.Err() == nil {
		return fmt.Errorf("bench: client %d: send: %w", c, writeErr)
	}
	return ctx.Err()
}
