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
)

type benchTopicsFlags struct {
	addrs     string
	http      string
	conns     int
	topics    int
	prefix    string
	pipeline  int
	payload   int
	run       string
	statsWait time.Duration
	json      bool
	cpuprof   string
}

func newBenchTopicsCmd(a *app) *cobra.Command {
	f := &benchTopicsFlags{}
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "Create many topics, write and read one entry in each, report rates and each node's cost",
		Long: `bench topics measures what a topic costs. It creates --topics new topics with
pipelined REGISTERs, then PUTs one entry of --payload bytes to each, then
reads it back with one GET and one FETCH per topic; every answer is checked
(each GET and FETCH must return the entry written to that topic). Each phase
is reported as topics/s with latency percentiles. With --http (the nodes'
HTTP ports) it then reads every node's /metrics: RSS, data-directory size
(waiting up to --stats-wait for a directory walk newer than the run), and
the Raft metadata snapshot's size and latest persist/restore times.

Topic i is <prefix>-i on connection i mod --conns; the default prefix is
new every run (t<run id>), so runs never collide.

Exit code 1 when a request got ERR or a wrong answer.`,
		Example: `  walrus-cli bench topics --addrs 127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093 \
      --http 127.0.0.1:9101,127.0.0.1:9102,127.0.0.1:9103 --topics 10000`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runBenchTopics(cmd, f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.addrs, "addrs", a.io.Getenv("WALRUS_ADDRS"), "comma-separated client addresses; connection i uses address i mod n (env WALRUS_ADDRS; default --addr)")
	fs.StringVar(&f.http, "http", a.io.Getenv("WALRUS_HTTP"), "comma-separated HTTP addresses (host:port) of the nodes to report RSS, data dir and Raft snapshot for (env WALRUS_HTTP; none = no node figures)")
	fs.IntVar(&f.conns, "conns", 1, "connections (1..256); topic i goes over connection i mod conns")
	fs.IntVar(&f.topics, "topics", 1000, "topics to create (1..1000000)")
	fs.StringVar(&f.prefix, "prefix", "", "topic name prefix (default t<run id>: new topics every run)")
	fs.IntVar(&f.pipeline, "pipeline", 512, "requests in flight per connection")
	fs.IntVar(&f.payload, "payload", bench.MinPayloadSize, fmt.Sprintf("bytes of the one entry per topic (>= %d; it carries a checksum)", bench.MinPayloadSize))
	fs.StringVar(&f.run, "run", "", "run id written in the entries (8 hex digits; default random)")
	fs.DurationVar(&f.statsWait, "stats-wait", 20*time.Second, "how long to wait for the nodes' data-dir size to cover the run (they walk it at most every 15s)")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON on stdout (no progress bar)")
	fs.StringVar(&f.cpuprof, "cpuprofile", "", "write a CPU profile of walrus-cli during the run to this file")
	_ = fs.MarkHidden("cpuprofile")
	return cmd
}

func (a *app) runBenchTopics(cmd *cobra.Command, f *benchTopicsFlags) error {
	cfg := bench.TopicsConfig{
		Addrs: splitAddrs(f.addrs), HTTP: splitAddrs(f.http), Conns: f.conns, Topics: f.topics,
		Prefix: f.prefix, Pipeline: f.pipeline, Size: f.payload, StatsWait: f.statsWait,
		Dial: a.benchDialer(), TLS: a.tls,
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
	if f.prefix != "" && strings.ContainsAny(f.prefix, " \t\r\n") {
		return usagef("--prefix must be one word, not %q", f.prefix)
	}
	errw := cmd.ErrOrStderr()
	if !f.json && isTerminal(errw) {
		var bar *progressbar.ProgressBar
		cur := ""
		cfg.Progress = func(phase string, n uint64) {
			if phase != cur { // a new bar per phase (called from one goroutine at a time)
				if bar != nil {
					_ = bar.Finish()
				}
				cur = phase
				bar = progressbar.NewOptions64(int64(f.topics),
					progressbar.OptionSetWriter(errw),
					progressbar.OptionSetDescription(phase),
					progressbar.OptionShowCount(),
					progressbar.OptionShowIts(),
					progressbar.OptionSetItsString("topics"),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionClearOnFinish(),
				)
			}
			_ = bar.Set64(int64(n))
		}
		defer func() {
			if bar != nil {
				_ = bar.Finish()
			}
		}()
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
	r, err := bench.Topics(cmd.Context(), cfg)
	if err != nil {
		if cmd.Context().Err() != nil {
			return context.Canceled
		}
		if errors.Is(err, bench.ErrConfig) {
			return &usageError{err: err}
		}
		return &nodeError{addr: strings.Join(cfg.Addrs, ","), err: err}
	}
	if f.json {
		if err := writeJSONValue(cmd.OutOrStdout(), r, a.pretty); err != nil {
			return err
		}
	} else {
		writeTopicsReport(cmd.OutOrStdout(), r)
	}
	if !r.OK() {
		var errs, wrong uint64
		first := ""
		for _, p := range r.Phases {
			errs += p.Errors
			wrong += p.Wrong
			if first == "" {
				first = p.FirstError
			}
		}
		return &checkFailed{msg: fmt.Sprintf("%d request(s) failed and %d wrong answer(s); first: %s", errs, wrong, first)}
	}
	return nil
}

func writeTopicsReport(w io.Writer, r *bench.TopicsReport) {
	fmt.Fprintf(w, "topics: %d topics %s-0..%d, one %d B entry each, over %d connection(s), pipeline %d, on %s\n",
		r.Topics, r.Prefix, r.Topics-1, r.Size, r.Conns, r.Pipeline, strings.Join(r.Addrs, ","))
	fmt.Fprintf(w, "  run         %s\n", r.Run)
	fmt.Fprintf(w, "  %-9s %12s %10s %9s %9s %9s %9s  %s\n", "phase", "topics/s", "time", "p50", "p95", "p99", "max", "errors")
	for _, p := range r.Phases {
		bad := strconv.FormatUint(p.Errors, 10)
		if p.Wrong > 0 {
			bad += fmt.Sprintf(" + %d wrong", p.Wrong)
		}
		if p.FirstError != "" {
			bad += " (first: " + p.FirstError + ")"
		}
		l := p.Latency
		fmt.Fprintf(w, "  %-9s %12s %9.3fs %9s %9s %9s %9s  %s\n", p.Name, groupThousands(uint64(p.PerSec+0.5)),
			p.Seconds, fmtMs(l.P50), fmtMs(l.P95), fmtMs(l.P99), fmtMs(l.Max), bad)
	}
	if len(r.Nodes) == 0 {
		return
	}
	fmt.Fprintf(w, "  %-22s %10s %10s %11s %11s %11s %11s %12s\n", "node", "RSS", "RSS/topic", "data dir", "disk/topic", "snapshot", "persist", "last restore")
	for _, n := range r.Nodes {
		name := n.HTTP
		if n.NodeID != "" {
			name = "node " + n.NodeID + " " + n.HTTP
		}
		if n.IsLeader {
			name += "*"
		}
		if n.Error != "" {
			fmt.Fprintf(w, "  %-22s %s\n", name, n.Error)
			continue
		}
		dd := fmtBytes(n.DataDirBytes)
		if n.DataDirStale {
			dd += "?"
		}
		fmt.Fprintf(w, "  %-22s %10s %10s %11s %11s %11s %11s %12s\n", name, fmtBytes(n.RSSBytes), perTopic(n.RSSBytes, n.Topics),
			dd, perTopic(n.DataDirBytes, n.Topics), fmtBytes(n.SnapshotBytes), fmtSeconds(n.SnapshotPersistSeconds), fmtSeconds(n.SnapshotRestoreSeconds))
	}
	fmt.Fprintf(w, "  (* Raft leader; per topic = total / all topics in the cluster (%s); ? = data-dir walk older than the run; restore and persist: latest since start, - = none)\n",
		topicsInCluster(r.Nodes))
}

func topicsInCluster(nodes []bench.NodeStats) string {
	for _, n := range nodes {
		if n.Error == "" {
			return groupThousands(uint64(n.Topics))
		}
	}
	return "?"
}

// fmtBytes formats a byte count in binary units.
func fmtBytes(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

func fmtSeconds(s float64) string {
	if s <= 0 {
		return "-"
	}
	return fmtMs(s * 1000)
}

func perTopic(total, topics float64) string {
	if topics <= 0 {
		return "-"
	}
	return fmtBytes(total / topics)
}
