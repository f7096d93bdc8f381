package clicmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/walrus-go/walrus/cli/walrus-cli/internal/bench"
	"github.com/walrus-go/walrus/cli/walrus-cli/internal/kbench"
	"github.com/walrus-go/walrus/node/server/servertest"
)

// benchFlags are shared by bench produce and bench consume.
type benchFlags struct {
	addrs     string
	clients   int
	messages  uint64
	size      int
	topics    int
	prefix    string
	pipeline  int
	run       string
	drainWait time.Duration
	json      bool
	echo      bool
	cpuprof   string
	page      int
	group     string
	kafka     bool
	codec     string
	notIdem   bool
}

func newBenchCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load generator: produce verifiable messages, consume and verify them",
		Long: `bench produce writes --messages messages of --size bytes to --topics topics
over --clients connections, each keeping up to --pipeline requests in flight,
and reports throughput and latency. Every payload carries the run id, the
run's total, its sequence number and a CRC, so bench consume can read the
topics back and say how many messages were verified, missing, duplicated or
corrupt. Run produce, then consume, with the same --topics/--topic-prefix.
bench fetch replays the topics with FETCH pages (non-destructive: run it as
often as you like); bench group reads them as a consumer group with READ and
ACK (use a new --group to read everything again). bench topics measures
what a topic costs: it creates many topics, writes and reads one entry in
each, and reports the rates and each node's memory, disk and Raft snapshot.

Exit code 1 when a request got ERR or (consume) verification found a problem.`,
		Args: noArgs,
	}
	cmd.AddCommand(newBenchProduceCmd(a), newBenchConsumeCmd(a), newBenchLogCmd(a, "fetch"), newBenchLogCmd(a, "group"), newBenchTopicsCmd(a))
	return cmd
}

// newBenchLogCmd builds bench fetch and bench group.
func newBenchLogCmd(a *app, mode string) *cobra.Command {
	f := &benchFlags{}
	short := map[string]string{
		"fetch": "Replay the bench topics with FETCH pages, verify every message, report msgs/s",
		"group": "Read the bench topics as a consumer group (READ + ACK pages), verify, report msgs/s",
	}[mode]
	cmd := &cobra.Command{
		Use:   mode,
		Short: short,
		Example: fmt.Sprintf(`  walrus-cli bench %s --addrs 127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093 \
      --topics 1 --clients %d --page 1000`, mode, map[string]int{"fetch": 1, "group": 4}[mode]),
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runBench(cmd, f, false, mode) },
	}
	addBenchFlags(cmd, a, f, false)
	cmd.Flags().IntVar(&f.page, "page", bench.DefaultPage, "entries per FETCH or READ (1..10000)")
	if mode == "group" {
		cmd.Flags().StringVar(&f.group, "group", "", "consumer group (default: a new one per run)")
	}
	return cmd
}

func addBenchFlags(cmd *cobra.Command, a *app, f *benchFlags, produce bool) {
	fs := cmd.Flags()
	fs.StringVar(&f.addrs, "addrs", a.io.Getenv("WALRUS_ADDRS"), "comma-separated client addresses to spread the clients over (env WALRUS_ADDRS; default --addr)")
	fs.IntVar(&f.clients, "clients", 16, "connections")
	fs.IntVar(&f.topics, "topics", 4, "number of topics (<prefix>-0 ... <prefix>-N-1)")
	fs.StringVar(&f.prefix, "topic-prefix", "bench", "topic name prefix")
	fs.IntVar(&f.pipeline, "pipeline", 64, "requests in flight per connection")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON on stdout (no progress bar)")
	fs.BoolVar(&f.kafka, "kafka", false, "produce/consume through the nodes' Kafka listeners with franz-go (--addrs are Kafka addresses; docs/kafka.md)")
	fs.StringVar(&f.codec, "kafka-compression", "none", "with --kafka: producer batch compression (none, gzip, snappy, lz4, zstd)")
	fs.BoolVar(&f.notIdem, "kafka-no-idempotence", false, "with --kafka: turn off franz-go's default idempotent producer")
	fs.BoolVar(&f.echo, "echo", false, "run against an in-process echo server instead of a node (measures the generator itself)")
	fs.StringVar(&f.cpuprof, "cpuprofile", "", "write a CPU profile of the run to this file (for working on the generator)")
	_ = fs.MarkHidden("cpuprofile")
	if produce {
		fs.Uint64Var(&f.messages, "messages", 100000, "total messages to produce")
		fs.IntVar(&f.size, "size", 100, fmt.Sprintf("payload bytes (>= %d)", bench.MinPayloadSize))
		fs.StringVar(&f.run, "run", "", "run id to write (8 hex digits; default random)")
	} else {
		fs.Uint64Var(&f.messages, "messages", 0, "stop after reading this many payloads (0 = until the run is complete or the topics are drained)")
		fs.StringVar(&f.run, "run", "", "run id to verify (default: the first run read)")
		fs.DurationVar(&f.drainWait, "drain-wait", time.Second, "a topic that answers only EMPTY for this long is drained")
	}
}

func newBenchProduceCmd(a *app) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Produce verifiable messages and report msgs/s, MB/s and latency",
		Example: `  walrus-cli bench produce --addrs 127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093 \
      --messages 200000 --size 100 --clients 16 --pipeline 64
  walrus-cli bench produce --echo --messages 2000000   # the generator alone
  walrus-cli bench produce --kafka --addrs 127.0.0.1:9192,127.0.0.1:9193,127.0.0.1:9194 --topics 1`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runBench(cmd, f, true, "produce") },
	}
	addBenchFlags(cmd, a, f, true)
	return cmd
}

func newBenchConsumeCmd(a *app) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Read the bench topics back, verify every message, report msgs/s and latency",
		Example: `  walrus-cli bench consume --addrs 127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093 \
      --clients 16 --pipeline 64`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runBench(cmd, f, false, "consume") },
	}
	addBenchFlags(cmd, a, f, false)
	return cmd
}

func (a *app) runBench(cmd *cobra.Command, f *benchFlags, produce bool, mode string) error {
	cfg := bench.Config{
		Addrs: splitAddrs(f.addrs), Clients: f.clients, Messages: f.messages, Size: f.size,
		Topics: f.topics, TopicPrefix: f.prefix, Pipeline: f.pipeline, DrainWait: f.drainWait,
		Dial: a.benchDialer(), TLS: a.tls, Page: f.page, Group: f.group,
		User: a.user, Password: a.password,
	}
	if mode == "group" && cfg.Group == "" {
		cfg.Group = fmt.Sprintf("bench-%d", time.Now().UnixNano())
	}
	if len(cfg.Addrs) == 0 {
		cfg.Addrs = []string{a.addr}
	}
	if f.run != "" {
		run, err := strconv.ParseUint(f.run, 16, 32)
		if err != nil || run == 0 {
			return usagef("--run must be 1 to 8 hex digits, not %q", f.run)
		}
		cfg.Run = uint32(run)
	}
	if f.echo {
		e, err := servertest.NewEcho()
		if err != nil {
			return err
		}
		defer e.Close()
		cfg.Addrs = []string{e.Addr()}
		cfg.NoVerify = true // echo stores nothing; GET returns a fixed payload
	}
	errw := cmd.ErrOrStderr()
	if !f.json && isTerminal(errw) {
		total := int64(-1)
		if produce {
			total = int64(f.messages)
		} else if f.messages > 0 {
			total = int64(f.messages)
		}
		bar := progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(errw),
			progressbar.OptionSetDescription(mode),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("msgs"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		cfg.Progress = func(n uint64) { _ = bar.Set64(int64(n)) }
		defer bar.Finish()
	}
	if f.cpuprof != "" {
		pf, err := os.Create(f.cpuprof)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var (
		r   *bench.Report
		err error
	)
	if f.kafka && (f.echo || (mode != "produce" && mode != "consume")) {
		return usagef("--kafka works with bench produce and bench consume, without --echo")
	}
	switch {
	case f.kafka && mode == "produce":
		r, err = kbench.Produce(cmd.Context(), cfg, kbench.Options{Codec: f.codec, NotIdempotent: f.notIdem})
	case f.kafka:
		r, err = kbench.Consume(cmd.Context(), cfg)
	}
	switch {
	case r != nil || err != nil:
	case mode == "produce":
		r, err = bench.Produce(cmd.Context(), cfg)
	case mode == "fetch":
		r, err = bench.Fetch(cmd.Context(), cfg)
	case mode == "group":
		r, err = bench.Group(cmd.Context(), cfg)
	default:
		r, err = bench.Consume(cmd.Context(), cfg)
	}
	if err != nil {
		if cmd.Context().Err() != nil {
			return context.Canceled
		}
		if errors.Is(err, bench.ErrConfig) {
			return &usageError{err: err}
		}
		return &nodeError{addr: strings.Join(cfg.Addrs, ","), err: err}
	}
	out := cmd.OutOrStdout()
	if f.json {
		if err := writeJSONValue(out, r, a.pretty); err != nil {
			return err
		}
	} else {
		writeBenchReport(out, r, f.echo)
	}
	if !r.OK() {
		if r.Errors > 0 {
			return &checkFailed{msg: fmt.Sprintf("%d request(s) failed; first: %s", r.Errors, r.FirstError)}
		}
		return &checkFailed{msg: "verification failed"}
	}
	return nil
}

func writeBenchReport(w io.Writer, r *bench.Report, echo bool) {
	target := strings.Join(r.Addrs, ",")
	if echo {
		target = "in-process echo server " + target
	}
	if r.Mode == "produce" {
		fmt.Fprintf(w, "produce: %d messages of %d B to %d topic(s) over %d client(s), pipeline %d, on %s\n",
			r.Messages, r.Size, r.Topics, r.Clients, r.Pipeline, target)
	} else if r.Mode == "consume" {
		fmt.Fprintf(w, "consume: %d messages from %d topic(s) over %d client(s), pipeline %d, on %s\n",
			r.Messages, r.Topics, r.Clients, r.Pipeline, target)
	} else {
		fmt.Fprintf(w, "%s: %d messages from %d topic(s) over %d client(s), one page in flight each, on %s\n",
			r.Mode, r.Messages, r.Topics, r.Clients, target)
	}
	fmt.Fprintf(w, "  run         %s\n", r.Run)
	fmt.Fprintf(w, "  time        %.3f s\n", r.Seconds)
	fmt.Fprintf(w, "  throughput  %s msgs/s   %.1f MB/s\n", groupThousands(uint64(r.MsgsPerSec+0.5)), r.MBPerSec)
	l := r.Latency
	fmt.Fprintf(w, "  latency     p50 %s  p95 %s  p99 %s  max %s  (mean %s)\n",
		fmtMs(l.P50), fmtMs(l.P95), fmtMs(l.P99), fmtMs(l.Max), fmtMs(l.Mean))
	if r.CPUSeconds > 0 {
		who := "walrus-cli"
		if echo {
			who = "walrus-cli + echo server"
		}
		fmt.Fprintf(w, "  cpu         %.2f s (%s) = %s msgs per CPU-second\n", r.CPUSeconds, who, groupThousands(uint64(r.MsgsPerCPUSecond+0.5)))
	}
	if r.Errors > 0 {
		fmt.Fprintf(w, "  errors      %d (first: %s)\n", r.Errors, r.FirstError)
	} else {
		fmt.Fprintf(w, "  errors      0\n")
	}
	if v := r.Verify; v != nil {
		if v.Skipped {
			fmt.Fprintf(w, "  verify      skipped (echo server returns a fixed payload)\n")
			return
		}
		fmt.Fprintf(w, "  verified %d messages, %d missing, %d duplicates, %d corrupt", v.Verified, v.Missing, v.Duplicates, v.Corrupt)
		if v.Foreign > 0 {
			fmt.Fprintf(w, " (%d intact messages of other runs ignored)", v.Foreign)
		}
		fmt.Fprintf(w, " — expected %d\n", v.Expected)
	}
}

func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 1:
		return fmt.Sprintf("%.2fms", v)
	default:
		return fmt.Sprintf("%.0fµs", v*1000)
	}
}

// groupThousands formats 1234567 as 1,234,567.
func groupThousands(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
