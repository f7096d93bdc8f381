package clicmd

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/walrus-go/walrus/node/protocol"
)

func newWatchCmd(a *app) *cobra.Command {
	var (
		addrsFlag string
		interval  time.Duration
		count     int
	)
	cmd := &cobra.Command{
		Use:   "watch [TOPIC]",
		Short: "Refresh the cluster status (or a topic's STATE) every --interval until Ctrl-C",
		Long: `Without TOPIC, print the status table (see status) every --interval; with
TOPIC, print STATE TOPIC from --addr. On a terminal the screen is redrawn;
otherwise each refresh is appended after a timestamp line. Errors are shown
and the next refresh tries again. Ctrl-C ends it with exit code 0.`,
		Example: `  walrus-cli watch --addrs 127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093
  walrus-cli --addr 127.0.0.1:9091 watch logs --interval 500ms`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("watch takes at most one TOPIC")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return usagef("--interval must be positive")
			}
			topic := ""
			if len(args) == 1 {
				topic = args[0]
			}
			return a.watch(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), topic, addrsFlag, interval, count)
		},
	}
	cmd.Flags().StringVar(&addrsFlag, "addrs", a.io.Getenv("WALRUS_ADDRS"), "comma-separated client addresses (status mode; env WALRUS_ADDRS)")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "time between refreshes")
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many refreshes (0 = until Ctrl-C)")
	return cmd
}

func (a *app) watch(ctx context.Context, out, errw io.Writer, topic, addrsFlag string, interval time.Duration, count int) error {
	tty := isTerminal(out)
	pal := newPalette(out, a.io.Getenv)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	what := "status"
	if topic != "" {
		what = "STATE " + topic
	}
	for n := 1; ; n++ {
		if tty {
			fmt.Fprint(out, "\x1b[H\x1b[2J") // home + clear screen
		}
		fmt.Fprintln(out, pal.dim(fmt.Sprintf("Every %s: %s    %s", interval, what, time.Now().Format(time.RFC3339))))
		if err := a.watchOnce(ctx, out, pal, topic, addrsFlag); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintln(out, pal.red("error: "+err.Error()))
		}
		if count > 0 && n >= count {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil // Ctrl-C is how watch is meant to end
		case <-ticker.C:
		}
	}
}

func (a *app) watchOnce(ctx context.Context, out io.Writer, pal palette, topic, addrsFlag string) error {
	if topic == "" {
		rows, err := a.status(ctx, out, addrsFlag)
		if err != nil {
			return err
		}
		if err := writeStatusTable(out, pal, rows); err != nil {
			return err
		}
		if p := statusProblem(rows); p != "" {
			fmt.Fprintln(out, pal.yellow("! "+p))
		}
		return nil
	}
	rep, err := a.request(ctx, protocol.Request{Command: protocol.CmdState, Topic: topic})
	if err != nil {
		return err
	}
	if rep.IsErr() {
		return &replyError{msg: string(rep.Body)}
	}
	_, err = fmt.Fprintln(out, colorJSON(pal, formatJSON(rep.Body, true)))
	return err
}
