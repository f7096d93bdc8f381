package bench

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/status"
)

// TopicsConfig describes one run of Topics.
type TopicsConfig struct {
	Addrs    []string // client addresses; connection i uses Addrs[i%len]
	Conns    int      // connections per phase
	Topics   int      // topics to create: Prefix-0 ... Prefix-(Topics-1)
	Prefix   string   // topic name prefix; "" = "t<run>" (new topics every run)
	Pipeline int      // requests in flight per connection
	Size     int      // payload bytes of the one entry per topic (>= MinPayloadSize)
	Run      uint32   // run id written in the payloads (0 = random)
	// HTTP are the nodes' HTTP addresses (host:port) whose /metrics give
	// the per-node figures; none = no node figures.
	HTTP []string
	// TLS is the client TLS configuration: of the Walrus connections
	// (through Dial) and of the scrapes of HTTP.
	TLS *tls.Config
	// StatsWait bounds the wait for a data-directory walk newer than the
	// end of the run (the nodes walk at most every 15 s).
	StatsWait time.Duration
	Dial      DialFunc
	// Progress, when set, is called about every 100ms with the phase and
	// the topics done in it (from a goroutine owned by the run).
	Progress func(phase string, done uint64)
}

// maxTopicsRun bounds TopicsConfig.Topics.
const maxTopicsRun = 1_000_000

// TopicsPhases are the phases of a topics run, in order.
var TopicsPhases = []string{"register", "put", "get", "fetch"}

func (c *TopicsConfig) validate() error {
	var errs []error
	if len(c.Addrs) == 0 {
		errs = append(errs, errors.New("no address"))
	}
	if c.Conns < 1 || c.Conns > 256 {
		errs = append(errs, fmt.Errorf("conns = %d: must be in 1..256", c.Conns))
	}
	if c.Pipeline < 1 || c.Pipeline > maxPipeline {
		errs = append(errs, fmt.Errorf("pipeline = %d: must be in 1..%d", c.Pipeline, maxPipeline))
	}
	if c.Topics < 1 || c.Topics > maxTopicsRun {
		errs = append(errs, fmt.Errorf("topics = %d: must be in 1..%d", c.Topics, maxTopicsRun))
	}
	if c.Size < MinPayloadSize || c.Size > protocol.DefaultMaxFrameBytes-1024 {
		errs = append(errs, fmt.Errorf("payload = %d: must be in %d..%d", c.Size, MinPayloadSize, protocol.DefaultMaxFrameBytes-1024))
	}
	if c.StatsWait < 0 || c.StatsWait > 10*time.Minute {
		errs = append(errs, fmt.Errorf("stats wait = %s: must be in 0..10m", c.StatsWait))
	}
	if c.Dial == nil {
		errs = append(errs, errors.New("no dial function"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// TopicsReport is the outcome of a topics run; its JSON form is what
// --json prints.
type TopicsReport struct {
	Mode     string        `json:"mode"` // "topics"
	Run      string        `json:"run"`
	Addrs    []string      `json:"addrs"`
	Conns    int           `json:"conns"`
	Pipeline int           `json:"pipeline"`
	Topics   int           `json:"topics"`
	Prefix   string        `json:"prefix"`
	Size     int           `json:"payload_bytes"`
	Phases   []TopicsPhase `json:"phases"`
	Nodes    []NodeStats   `json:"nodes,omitempty"`
}

// TopicsPhase is one phase: one request per topic.
type TopicsPhase struct {
	Name       string  `json:"name"`   // register, put, get or fetch
	Done       uint64  `json:"done"`   // topics whose answer was right
	Errors     uint64  `json:"errors"` // ERR replies
	Wrong      uint64  `json:"wrong"`  // GET/FETCH answers that were not the entry written to that topic
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"` // first request sent to last answer
	PerSec     float64 `json:"topics_per_sec"`
	Latency    Latency `json:"latency_ms"`
}

// OK reports whether every request of every phase got the right answer.
func (r *TopicsReport) OK() bool {
	for _, p := range r.Phases {
		if p.Errors > 0 || p.Wrong > 0 || p.Done != uint64(r.Topics) {
			return false
		}
	}
	return len(r.Phases) == len(TopicsPhases)
}

// Topics creates cfg.Topics topics with pipelined REGISTERs, then writes
// one entry to each (pipelined PUTs), reads it back with one GET and one
// FETCH per topic, and checks that every answer is the entry written to
// that topic. Each phase is timed on its own. When cfg.HTTP is set it then
// scrapes every node's /metrics for RSS, data-directory size and the Raft
// snapshot figures. It returns an error only when the run could not be
// carried out; wrong answers are counted in the report.
func Topics(ctx context.Context, cfg TopicsConfig) (*TopicsReport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	for cfg.Run == 0 {
		cfg.Run = rand.Uint32()
	}
	if cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("t%08x", cfg.Run)
	}
	r := &TopicsReport{
		Mode: "topics", Run: fmt.Sprintf("%08x", cfg.Run), Addrs: cfg.Addrs, Conns: cfg.Conns,
		Pipeline: cfg.Pipeline, Topics: cfg.Topics, Prefix: cfg.Prefix, Size: cfg.Size,
	}
	pcfg := Config{Addrs: cfg.Addrs, Clients: cfg.Conns, Dial: cfg.Dial}
	pipes, err := dialAll(ctx, &pcfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, p := range pipes {
			p.Close()
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWatch := closeOnCancel(ctx, pipes)
	defer stopWatch()

	tr := &topicsRun{cfg: &cfg, pipes: pipes}
	for _, name := range TopicsPhases {
		p, err := tr.phase(ctx, name)
		if err != nil {
			return nil, err
		}
		r.Phases = append(r.Phases, p)
	}
	end := time.Now()
	if len(cfg.HTTP) > 0 {
		r.Nodes = ScrapeNodes(ctx, cfg.HTTP, end, cfg.StatsWait, cfg.TLS)
	}
	return r, nil
}

// topicsRun is the state the phases of one run share.
type topicsRun struct {
	cfg   *TopicsConfig
	pipes []Pipe
}

// phase runs one request per topic, topic i on connection i%Conns.
func (tr *topicsRun) phase(ctx context.Context, name string) (TopicsPhase, error) {
	cfg := tr.cfg
	var (
		done, wrong atomic.Uint64
		tally       errorTally
	)
	pcfg := Config{Clients: cfg.Conns}
	if cfg.Progress != nil {
		pcfg.Progress = func(n uint64) { cfg.Progress(name, n) }
	}
	elapsed, _, h, err := runClients(&pcfg, func() uint64 { return done.Load() + wrong.Load() + tally.n.Load() }, func(c int, h *Histogram) error {
		return tr.client(ctx, name, c, h, &done, &wrong, &tally)
	})
	if err != nil {
		if ctx.Err() != nil {
			return TopicsPhase{}, ctx.Err()
		}
		return TopicsPhase{}, fmt.Errorf("bench: topics %s: %w", name, err)
	}
	p := TopicsPhase{
		Name: name, Done: done.Load(), Wrong: wrong.Load(), Errors: tally.n.Load(), FirstError: tally.first,
		Seconds: elapsed.Seconds(),
		Latency: Latency{
			P50: ms(h.Quantile(0.50)), P95: ms(h.Quantile(0.95)), P99: ms(h.Quantile(0.99)),
			Max: ms(h.Max()), Mean: ms(h.Mean()),
		},
	}
	if p.Seconds > 0 {
		p.PerSec = float64(cfg.Topics) / p.Seconds
	}
	return p, nil
}

func (tr *topicsRun) client(ctx context.Context, phase string, c int, h *Histogram, done, wrong *atomic.Uint64, tally *errorTally) error {
	cfg := tr.cfg
	conns := cfg.Conns
	if c >= cfg.Topics {
		return nil
	}
	count := (cfg.Topics-1-c)/conns + 1
	// One payload buffer per window slot (Pipe.Send may keep a reference
	// until the Flush that follows it); PUT only.
	var bufs [][]byte
	if phase == "put" {
		bufs = make([][]byte, cfg.Pipeline)
		for i := range bufs {
			bufs[i] = make([]byte, cfg.Size)
		}
	}
	d := newDriver(tr.pipes[c], cfg.Pipeline, h)
	i := 0 // next topic of this client
	fill := func(free, _ int) (bool, error) {
		for j := 0; j < free && i < count; j++ {
			t := c + i*conns
			topic := TopicName(cfg.Prefix, t)
			req := protocol.Request{Command: protocolCommand(phase), Topic: topic}
			switch phase {
			case "put":
				req.Payload = tr.payload(bufs[j], t)
			case "fetch":
				req.Args = []string{topic, "0", "1"}
			}
			if err := d.send(req, int32(t)); err != nil {
				return false, err
			}
			i++
		}
		return i < count, nil
	}
	check := make([]byte, cfg.Size)
	err := d.run(ctx, fill, func(rep protocol.Reply, tag int32) {
		t := int(tag)
		switch {
		case rep.Kind == protocol.ReplyErr:
			tally.add(fmt.Sprintf("%s %s: %s", phase, TopicName(cfg.Prefix, t), rep.String()))
		case phase == "register" || phase == "put":
			if rep.Kind == protocol.ReplyOK {
				done.Add(1)
			} else {
				tally.add(fmt.Sprintf("%s %s: %s", phase, TopicName(cfg.Prefix, t), rep.String()))
			}
		default:
			if tr.verify(phase, rep, t, check) {
				done.Add(1)
			} else {
				wrong.Add(1)
				tally.once.Do(func() {
					tally.first = fmt.Sprintf("%s %s: not the entry written to it: %.120s", phase, TopicName(cfg.Prefix, t), rep.Encode())
				})
			}
		}
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("connection %d: %w", c, err)
	}
	return nil
}

func protocolCommand(phase string) string {
	switch phase {
	case "register":
		return protocol.CmdRegister
	case "put":
		return protocol.CmdPut
	case "get":
		return protocol.CmdGet
	}
	return protocol.CmdFetch
}

// payload is the entry of topic t: a verifiable payload whose sequence
// number is the topic's number, so a GET that returns another topic's
// entry is caught.
func (tr *topicsRun) payload(buf []byte, t int) []byte {
	return EncodePayload(buf, Message{Run: tr.cfg.Run, Total: uint64(tr.cfg.Topics), Seq: uint64(t)})
}

// verify reports whether a GET or FETCH reply is exactly the entry
// written to topic t (FETCH: at offset 0, and nothing else).
func (tr *topicsRun) verify(phase string, rep protocol.Reply, t int, buf []byte) bool {
	want := tr.payload(buf, t)
	if phase == "get" {
		return rep.Kind == protocol.ReplyPayload && string(rep.Body) == string(want)
	}
	if rep.Kind != protocol.ReplyRaw {
		return false
	}
	var f status.Fetch
	if err := json.Unmarshal(rep.Body, &f); err != nil {
		return false
	}
	return f.Topic == TopicName(tr.cfg.Prefix, t) && len(f.Entries) == 1 &&
		f.Entries[0].Offset == 0 && f.Entries[0].Payload == string(want) && f.Next == 1
}
