package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/node/client"
)

// DefaultPage is the entries per FETCH or READ of the log benchmarks.
const DefaultPage = 1000

// logRun is what Fetch and Group share: one client connection each,
// the verifier and the counters.
type logRun struct {
	cfg     *Config
	clients []*client.Client
	topics  []string
	latest  []uint64
	v       *verifier
	read    atomic.Uint64
	bytes   atomic.Uint64
	empty   atomic.Uint64
	tally   errorTally
}

func newLogRun(ctx context.Context, cfg *Config) (*logRun, error) {
	if err := cfg.validate(false); err != nil {
		return nil, err
	}
	if cfg.Page < 1 || cfg.Page > 10000 {
		return nil, fmt.Errorf("%w: page = %d: must be in 1..10000", ErrConfig, cfg.Page)
	}
	lr := &logRun{cfg: cfg, v: newVerifier(cfg.Run)}
	for i := range cfg.Clients {
		addr := cfg.Addrs[i%len(cfg.Addrs)]
		c, err := client.Dial(ctx, addr, client.Options{Timeout: 30 * time.Second, TLS: cfg.TLS, User: cfg.User, Password: cfg.Password})
		if err != nil {
			lr.close()
			return nil, fmt.Errorf("bench: connect client %d to %s: %w", i, addr, err)
		}
		lr.clients = append(lr.clients, c)
	}
	for i := range cfg.Topics {
		t := TopicName(cfg.TopicPrefix, i)
		off, err := lr.clients[0].Offsets(ctx, t)
		if err != nil {
			lr.close()
			return nil, fmt.Errorf("bench: offsets of %s: %w", t, err)
		}
		lr.topics = append(lr.topics, t)
		lr.latest = append(lr.latest, off.Latest)
	}
	return lr, nil
}

func (lr *logRun) close() {
	for _, c := range lr.clients {
		_ = c.Close()
	}
}

func (lr *logRun) add(payload string) {
	lr.read.Add(1)
	lr.bytes.Add(uint64(len(payload)))
	if !lr.cfg.NoVerify {
		lr.v.add([]byte(payload))
	}
}

func (lr *logRun) report(mode string, elapsed, cpu time.Duration, h *Histogram) *Report {
	v := lr.v
	expected := v.total
	if v.run.Load() == 0 {
		expected = lr.cfg.Messages
	}
	r := &Report{
		Mode: mode, Run: fmt.Sprintf("%08x", v.run.Load()), Addrs: lr.cfg.Addrs, Clients: lr.cfg.Clients,
		Pipeline: 1, Topics: lr.cfg.Topics, Messages: lr.read.Load(), Bytes: lr.bytes.Load(),
		Errors: lr.tally.n.Load(), FirstError: lr.tally.first,
		Verify: &Verify{
			Expected: expected, Verified: v.verified.Load(), Missing: expected - min(v.verified.Load(), expected),
			Duplicates: v.dups.Load(), Corrupt: v.corrupt.Load(), Foreign: v.foreign.Load(), Empty: lr.empty.Load(),
		},
	}
	if lr.cfg.NoVerify {
		r.Verify = &Verify{Skipped: true}
	}
	if r.Messages > 0 {
		r.Size = int(r.Bytes / r.Messages)
	}
	r.finish(h, elapsed, cpu)
	return r
}

// Fetch replays the bench topics with FETCH pages of cfg.Page entries,
// one request at a time per client, from offset 0 to the latest offset
// each topic had when the run started. The clients of one topic split
// its range evenly. It verifies every payload read.
func Fetch(ctx context.Context, cfg Config) (*Report, error) {
	lr, err := newLogRun(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer lr.close()
	elapsed, cpu, h, err := runClients(&cfg, lr.read.Load, func(c int, h *Histogram) error {
		t := c % cfg.Topics
		readers := (cfg.Clients - t + cfg.Topics - 1) / cfg.Topics // clients on topic t
		k := uint64(c / cfg.Topics)
		from, to := lr.latest[t]*k/uint64(readers), lr.latest[t]*(k+1)/uint64(readers)
		for off := from; off < to; {
			start := time.Now()
			f, err := lr.clients[c].Fetch(ctx, lr.topics[t], off, int(min(uint64(cfg.Page), to-off)))
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				lr.tally.add(err.Error())
				return nil
			}
			h.Record(time.Since(start))
			if len(f.Entries) == 0 {
				lr.empty.Add(1)
				return nil
			}
			for _, e := range f.Entries {
				lr.add(e.Payload)
			}
			off = f.Next
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lr.report("fetch", elapsed, cpu, h), nil
}

// Group reads the bench topics as consumer group cfg.Group: every client
// READs pages of cfg.Page entries from its topic and ACKs each page in
// one request, until the entries the topics held when the run started are
// acked, or its topic answered only EMPTY for cfg.DrainWait.
func Group(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.DrainWait <= 0 {
		cfg.DrainWait = time.Second
	}
	lr, err := newLogRun(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer lr.close()
	acked := make([]atomic.Uint64, cfg.Topics)
	elapsed, cpu, h, err := runClients(&cfg, lr.read.Load, func(c int, h *Histogram) error {
		t := c % cfg.Topics
		cl := lr.clients[c]
		offsets := make([]uint64, 0, cfg.Page)
		var emptySince time.Time
		for acked[t].Load() < lr.latest[t] {
			start := time.Now()
			r, err := cl.Read(ctx, cfg.Group, lr.topics[t], cfg.Page, 0)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				lr.tally.add(err.Error())
				return nil
			}
			if len(r.Entries) == 0 {
				lr.empty.Add(1)
				if emptySince.IsZero() {
					emptySince = time.Now()
				} else if time.Since(emptySince) > cfg.DrainWait {
					return nil
				}
				select { // leases of other clients may come back: poll
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(5 * time.Millisecond):
				}
				continue
			}
			emptySince = time.Time{}
			offsets = offsets[:0]
			for _, e := range r.Entries {
				lr.add(e.Payload)
				offsets = append(offsets, e.Offset)
			}
			if err := cl.Ack(ctx, cfg.Group, lr.topics[t], offsets...); err != nil {
				lr.tally.add(err.Error())
				return nil
			}
			h.Record(time.Since(start))
			acked[t].Add(uint64(len(offsets)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lr.report("group", elapsed, cpu, h), nil
}
