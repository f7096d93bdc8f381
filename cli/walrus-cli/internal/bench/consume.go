package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
)

// verifier checks every payload read and counts each message of the run
// once, lock-free after the run is chosen: a bitmap of the run's sequence
// numbers updated with atomic OR tells first reads from duplicates.
type verifier struct {
	want uint32 // run to verify; 0 = the first run seen

	mu    sync.Mutex    // serialises choosing the run
	run   atomic.Uint32 // 0 until chosen; total and bits are set before it
	total uint64        // messages of the run
	bits  []atomic.Uint64

	verified, dups, corrupt, foreign atomic.Uint64

	done     chan struct{} // closed by finish: every message of the run verified, or the read cap reached
	doneOnce sync.Once
}

func newVerifier(want uint32) *verifier { return &verifier{want: want, done: make(chan struct{})} }

func (v *verifier) finish() { v.doneOnce.Do(func() { close(v.done) }) }

func (v *verifier) add(p []byte) {
	m, err := DecodePayload(p)
	if err != nil || m.Run == 0 {
		v.corrupt.Add(1)
		return
	}
	run := v.run.Load()
	if run == 0 {
		v.mu.Lock()
		if v.run.Load() == 0 && (v.want == 0 || v.want == m.Run) {
			v.total = m.Total
			v.bits = make([]atomic.Uint64, (m.Total+63)/64)
			v.run.Store(m.Run)
		}
		v.mu.Unlock()
		run = v.run.Load()
	}
	if m.Run != run {
		v.foreign.Add(1)
		return
	}
	if m.Total != v.total {
		// Same run, different total: the header was damaged in a way the
		// checksum cannot tell from another message.
		v.corrupt.Add(1)
		return
	}
	bit := uint64(1) << (m.Seq % 64)
	if old := v.bits[m.Seq/64].Or(bit); old&bit != 0 {
		v.dups.Add(1)
		return
	}
	if v.verified.Add(1) == v.total {
		v.finish()
	}
}

// topicState is what the reader learns about one topic and the writer reads.
type topicState struct {
	streak      atomic.Uint64 // consecutive EMPTY replies
	streakStart atomic.Int64  // ns since the window base of the first of them; 0 = none
	drained     atomic.Bool
}

// Consume reads the bench topics with pipelined GETs until every message of
// the run has been read, cfg.Messages payloads (when not 0) have been read,
// or every topic has answered only EMPTY for cfg.DrainWait, and verifies
// what it read. Client c reads topic c%Topics
// (when Clients >= Topics) or every topic t with t%Clients == c.
func Consume(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(false); err != nil {
		return nil, err
	}
	if cfg.DrainWait <= 0 {
		cfg.DrainWait = time.Second
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
	states := make([]topicState, cfg.Topics)
	for i := range topics {
		topics[i] = TopicName(cfg.TopicPrefix, i)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWatch := closeOnCancel(ctx, pipes)
	defer stopWatch()

	v := newVerifier(cfg.Run)
	var (
		read, bytes, empty atomic.Uint64
		tally              errorTally
	)
	elapsed, cpu, h, err := runClients(&cfg, read.Load, func(c int, h *Histogram) error {
		var mine []int32
		if cfg.Clients >= cfg.Topics {
			mine = []int32{int32(c % cfg.Topics)}
		} else {
			for t := c; t < cfg.Topics; t += cfg.Clients {
				mine = append(mine, int32(t))
			}
		}
		cc := consumeClient{cfg: &cfg, id: c, p: pipes[c], topics: topics, states: states, mine: mine,
			v: v, h: h, read: &read, bytes: &bytes, empty: &empty, tally: &tally}
		return cc.run(ctx)
	})
	if err != nil {
		return nil, err
	}
	run := v.run.Load()
	expected := v.total
	if run == 0 {
		expected = cfg.Messages // nothing of a run was read
		run = cfg.Run
	}
	verified := v.verified.Load()
	r := &Report{
		Mode: "consume", Run: fmt.Sprintf("%08x", run), Addrs: cfg.Addrs, Clients: cfg.Clients,
		Pipeline: cfg.Pipeline, Topics: cfg.Topics,
		Messages: read.Load(), Bytes: bytes.Load(), Errors: tally.n.Load(), FirstError: tally.first,
		Verify: &Verify{
			Expected: expected, Verified: verified, Missing: expected - min(verified, expected),
			Duplicates: v.dups.Load(), Corrupt: v.corrupt.Load(), Foreign: v.foreign.Load(), Empty: empty.Load(),
		},
	}
	if cfg.NoVerify {
		r.Verify = &Verify{Skipped: true, Empty: empty.Load()}
	}
	if r.Messages > 0 {
		r.Size = int(r.Bytes / r.Messages)
	}
	r.finish(h, elapsed, cpu)
	return r, nil
}

type consumeClient struct {
	cfg    *Config
	id     int
	p      Pipe
	topics []string
	states []topicState
	mine   []int32
	v      *verifier
	h      *Histogram
	tally  *errorTally

	read, bytes, empty *atomic.Uint64
}

func (cc *consumeClient) run(ctx context.Context) error {
	d := newDriver(cc.p, cc.cfg.Pipeline, cc.h)
	drainNs := int64(cc.cfg.DrainWait)
	pollEvery := max(cc.cfg.DrainWait/20, time.Millisecond)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	next := 0
	live := make([]int32, 0, len(cc.mine))

	// fill sends GETs round-robin over the client's topics that are not
	// drained, until all are drained or the run is complete. While every
	// topic it reads answers EMPTY it sends one GET per pollEvery, so an
	// idle end does not spin.
	fill := func(free, inflight int) (bool, error) {
		select {
		case <-cc.v.done:
			return false, nil
		default:
		}
		live = live[:0]
		streaking := 0
		for _, t := range cc.mine {
			st := &cc.states[t]
			if st.drained.Load() {
				continue
			}
			live = append(live, t)
			if st.streak.Load() > 0 {
				streaking++
			}
		}
		if len(live) == 0 {
			return false, nil
		}
		if streaking == len(live) {
			if inflight > 0 {
				return true, nil // read those replies first
			}
			timer.Reset(pollEvery)
			select {
			case <-timer.C:
			case <-cc.v.done:
				return false, nil
			case <-ctx.Done():
				return false, ctx.Err()
			}
			free = 1
		}
		for range free {
			t := live[next%len(live)]
			next++
			if err := d.send(protocol.Request{Command: protocol.CmdGet, Topic: cc.topics[t]}, t); err != nil {
				return false, err
			}
		}
		return true, nil
	}
	handle := func(rep protocol.Reply, t int32) {
		st := &cc.states[t]
		switch rep.Kind {
		case protocol.ReplyPayload:
			st.streak.Store(0)
			st.streakStart.Store(0)
			n := cc.read.Add(1)
			cc.bytes.Add(uint64(len(rep.Body)))
			if !cc.cfg.NoVerify {
				cc.v.add(rep.Body)
			}
			if n == cc.cfg.Messages {
				cc.v.finish()
			}
		case protocol.ReplyEmpty:
			cc.empty.Add(1)
			now := int64(time.Since(d.base))
			if st.streak.Add(1) == 1 {
				st.streakStart.Store(now)
			} else if s := st.streakStart.Load(); s != 0 && now-s >= drainNs {
				st.drained.Store(true)
			}
		default:
			cc.tally.add(rep.String())
		}
	}
	err := d.run(ctx, fill, handle)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("bench: consumer %d: %w", cc.id, err)
	}
	return nil
}
