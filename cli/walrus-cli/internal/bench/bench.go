package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
)

// Pipe is one connection that can carry many requests in flight: Send
// queues a request (it may only buffer it), Flush writes what is queued, and
// Recv returns the replies in request order. Send/Flush are called from one
// goroutine and Recv from another; Close unblocks both.
type Pipe interface {
	Send(req protocol.Request) error
	Flush() error
	Recv() (protocol.Reply, error)
	Close() error
}

// DialFunc opens a Pipe to addr.
type DialFunc func(ctx context.Context, addr string) (Pipe, error)

// Config describes one produce or consume run.
type Config struct {
	Addrs       []string      // client addresses; client i uses Addrs[i%len]
	Clients     int           // connections
	Messages    uint64        // produce: total to send; consume: expected (0 = learn from payloads)
	Size        int           // produce: payload bytes (>= MinPayloadSize)
	Topics      int           // topics TopicName(TopicPrefix, 0..Topics-1)
	TopicPrefix string        // topic name prefix
	Pipeline    int           // requests in flight per connection
	Run         uint32        // produce: run id written in payloads; consume: run to verify (0 = first seen)
	DrainWait   time.Duration // consume: a topic that answered only EMPTY this long is drained
	// NoVerify makes consume count payloads without decoding them (for
	// servers that do not store what was produced, like servertest.Echo).
	NoVerify bool
	Dial     DialFunc
	// User and Password authenticate the fetch and group runs'
	// connections (the produce/consume runs authenticate in Dial).
	User, Password string
	// TLS is the client TLS configuration of the fetch and group runs'
	// own connections (nil: plaintext); Dial carries its own.
	TLS *tls.Config
	// Page is the entries per FETCH or READ (fetch and group runs).
	Page int
	// Group is the consumer group of a group run.
	Group string
	// Progress, when set, is called about every 100ms with the messages done
	// so far (from a goroutine owned by the run).
	Progress func(done uint64)
}

// maxPipeline bounds Config.Pipeline (requests in flight per connection).
const maxPipeline = 4096

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("bench: invalid config")

func (c *Config) validate(produce bool) error {
	var errs []error
	if len(c.Addrs) == 0 {
		errs = append(errs, errors.New("no address"))
	}
	if c.Clients < 1 || c.Clients > 4096 {
		errs = append(errs, fmt.Errorf("clients = %d: must be in 1..4096", c.Clients))
	}
	// The driver does not read while it writes a batch (up to half the
	// pipeline); a bound keeps the replies to one batch well inside the
	// socket buffers, so the server never stalls writing them.
	if c.Pipeline < 1 || c.Pipeline > maxPipeline {
		errs = append(errs, fmt.Errorf("pipeline = %d: must be in 1..%d", c.Pipeline, maxPipeline))
	}
	if c.Topics < 1 || c.Topics > 100000 {
		errs = append(errs, fmt.Errorf("topics = %d: must be in 1..100000", c.Topics))
	}
	if produce {
		if c.Messages < 1 || c.Messages > maxSeq {
			errs = append(errs, fmt.Errorf("messages = %d: must be in 1..%d", c.Messages, uint64(maxSeq)))
		}
		if c.Size < MinPayloadSize || c.Size > protocol.DefaultMaxFrameBytes-1024 {
			errs = append(errs, fmt.Errorf("size = %d: must be in %d..%d", c.Size, MinPayloadSize, protocol.DefaultMaxFrameBytes-1024))
		}
	}
	if c.Dial == nil {
		errs = append(errs, errors.New("no dial function"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Report is the outcome of a run; its JSON form is what --json prints.
type Report struct {
	Mode       string   `json:"mode"` // "produce" or "consume"
	Run        string   `json:"run"`  // run id, 8 hex digits
	Addrs      []string `json:"addrs"`
	Clients    int      `json:"clients"`
	Pipeline   int      `json:"pipeline"`
	Topics     int      `json:"topics"`
	Size       int      `json:"size_bytes"`
	Messages   uint64   `json:"messages"` // produce: acknowledged with OK; consume: payloads read
	Bytes      uint64   `json:"bytes"`
	Errors     uint64   `json:"errors"` // ERR replies
	FirstError string   `json:"first_error,omitempty"`
	Seconds    float64  `json:"seconds"`
	MsgsPerSec float64  `json:"msgs_per_sec"`
	MBPerSec   float64  `json:"mb_per_sec"` // payload bytes, 10^6
	Latency    Latency  `json:"latency_ms"` // request flushed to reply received
	// CPUSeconds is the user+system CPU this process used during the run
	// (with --echo it includes the in-process server). MsgsPerCPUSecond =
	// Messages / CPUSeconds is what the generator could drive per core:
	// compare it with MsgsPerSec to see that the generator is not the limit.
	CPUSeconds       float64 `json:"cpu_seconds"`
	MsgsPerCPUSecond float64 `json:"msgs_per_cpu_second"`
	// consume only
	Verify *Verify `json:"verify,omitempty"`
}

// Latency percentiles in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Verify is what consume found.
type Verify struct {
	Expected   uint64 `json:"expected"`          // messages of the run (from payloads or --messages)
	Skipped    bool   `json:"skipped,omitempty"` // NoVerify: nothing below was checked
	Verified   uint64 `json:"verified"`          // distinct messages of the run read intact
	Missing    uint64 `json:"missing"`           // expected - verified
	Duplicates uint64 `json:"duplicates"`        // messages of the run read more than once
	Corrupt    uint64 `json:"corrupt"`           // payloads that failed their checksum or format
	Foreign    uint64 `json:"foreign"`           // intact messages of another run (left in the topics earlier)
	Empty      uint64 `json:"empty"`             // EMPTY replies (polling at the end)
}

// OK reports whether a run is clean: no ERR replies and, for consume,
// nothing missing, duplicated or corrupt.
func (r *Report) OK() bool {
	if r.Errors > 0 {
		return false
	}
	if v := r.Verify; v != nil && !v.Skipped {
		return v.Missing == 0 && v.Duplicates == 0 && v.Corrupt == 0 && v.Expected > 0
	}
	return true
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (r *Report) finish(h *Histogram, elapsed, cpu time.Duration) {
	r.Seconds = elapsed.Seconds()
	r.CPUSeconds = cpu.Seconds()
	if r.CPUSeconds > 0 {
		r.MsgsPerCPUSecond = float64(r.Messages) / r.CPUSeconds
	}
	if r.Seconds > 0 {
		r.MsgsPerSec = float64(r.Messages) / r.Seconds
		r.MBPerSec = float64(r.Bytes) / 1e6 / r.Seconds
	}
	r.Latency = Latency{
		P50: ms(h.Quantile(0.50)), P95: ms(h.Quantile(0.95)), P99: ms(h.Quantile(0.99)),
		Max: ms(h.Max()), Mean: ms(h.Mean()),
	}
}

// errorTally counts ERR replies and keeps the first message.
type errorTally struct {
	n     atomic.Uint64
	once  sync.Once
	first string
}

func (e *errorTally) add(msg string) {
	e.n.Add(1)
	e.once.Do(func() { e.first = msg })
}

// dialAll opens one Pipe per client, closing the opened ones on failure.
func dialAll(ctx context.Context, cfg *Config) ([]Pipe, error) {
	pipes := make([]Pipe, 0, cfg.Clients)
	for i := range cfg.Clients {
		addr := cfg.Addrs[i%len(cfg.Addrs)]
		p, err := cfg.Dial(ctx, addr)
		if err != nil {
			for _, q := range pipes {
				q.Close()
			}
			return nil, fmt.Errorf("bench: connect client %d to %s: %w", i, addr, err)
		}
		pipes = append(pipes, p)
	}
	return pipes, nil
}

// runClients runs client(c, h) for every client c on its own goroutine with
// its own latency histogram, shows progress from done() meanwhile, and
// returns the wall and process CPU time of the run and the merged
// histogram. produce and consume share it so both measure the same way.
func runClients(cfg *Config, done func() uint64, client func(c int, h *Histogram) error) (elapsed, cpu time.Duration, h *Histogram, err error) {
	var (
		hists      = make([]*Histogram, cfg.Clients)
		errs       = make([]error, cfg.Clients)
		wg, progWG sync.WaitGroup
		stop       = make(chan struct{})
	)
	progressLoop(cfg, done, stop, &progWG)
	start, cpu0 := time.Now(), processCPU()
	for c := range cfg.Clients {
		hists[c] = NewHistogram()
		wg.Go(func() { errs[c] = client(c, hists[c]) })
	}
	wg.Wait()
	elapsed, cpu = time.Since(start), processCPU()-cpu0
	close(stop)
	progWG.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, 0, nil, err
	}
	h = NewHistogram()
	for _, x := range hists {
		h.Merge(x)
	}
	return elapsed, cpu, h, nil
}

// progressLoop calls cfg.Progress with done() until stop is closed.
func progressLoop(cfg *Config, done func() uint64, stop <-chan struct{}, wg *sync.WaitGroup) {
	if cfg.Progress == nil {
		return
	}
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				cfg.Progress(done())
				return
			case <-t.C:
				cfg.Progress(done())
			}
		}
	})
}

// closeOnCancel closes every pipe when ctx ends, so blocked Recv/Flush
// calls return; the returned func stops the watcher and waits for it.
func closeOnCancel(ctx context.Context, pipes []Pipe) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
			for _, p := range pipes {
				p.Close()
			}
		case <-done:
		}
	})
	return func() { close(done); wg.Wait() }
}
