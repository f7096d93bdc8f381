package clicmd

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/walrus-go/walrus/node/tlsconf"
)

// DefaultAddr is the node walrus-cli talks to without --addr or WALRUS_ADDR:
// the client address of a node started with no configuration.
const DefaultAddr = "127.0.0.1:8080"

// IO is the process's standard streams and environment, passed in so tests
// can run the command tree in-process.
type IO struct {
	In     io.Reader
	Out    io.Writer
	Err    io.Writer
	Getenv func(string) string // nil = os.Getenv
}

// app holds the global flags and what every command needs. One per Run.
type app struct {
	io      IO
	addr    string
	timeout time.Duration
	pretty  bool
	dial    dialFunc
	// user is --user; password is resolved before the command runs
	// (WALRUS_PASSWORD or a terminal prompt), never from a flag.
	user, password string
	// --tls-ca, --tls-cert, --tls-key, and the client configuration built
	// from them before any command runs (nil: plaintext).
	tlsCA, tlsCert, tlsKey string
	tls                    *tls.Config
}

// Run builds the command tree, executes it with args and returns the exit
// code. ctx is cancelled on SIGINT/SIGTERM by main.
func Run(ctx context.Context, args []string, stdio IO) int {
	return run(ctx, args, stdio, nil)
}

func run(ctx context.Context, args []string, stdio IO, dial dialFunc) int {
	if stdio.Getenv == nil {
		stdio.Getenv = os.Getenv
	}
	a := &app{io: stdio, dial: dial}
	if a.dial == nil {
		a.dial = a.dialClient
	}
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	err := root.ExecuteContext(ctx)
	code, msg := exitCode(err)
	if msg != "" {
		fmt.Fprintln(stdio.Err, msg)
	}
	return code
}

func newRootCmd(a *app) *cobra.Command {
	defAddr := a.io.Getenv("WALRUS_ADDR")
	if defAddr == "" {
		defAddr = DefaultAddr
	}
	cmd := &cobra.Command{
		Use:   "walrus-cli",
		Short: "Client and admin tool for Walrus nodes",
		Long: `walrus-cli talks to a Walrus node over the client protocol.

With no command it opens an interactive shell on --addr where protocol
commands are typed as they are sent (PUT logs hello world). The subcommands
run one request and print the reply: OK, the payload, EMPTY or JSON on stdout;
ERR ... on stderr.

Exit codes: 0 ok, 1 ERR reply or failed check, 2 usage, 3 node unreachable,
4 timeout, 130 interrupted.`,
		Example: `  walrus-cli --addr 127.0.0.1:9091                 # interactive shell
  walrus-cli --addr 127.0.0.1:9091 put logs hello world
  walrus-cli --addr 127.0.0.1:9091 get logs
  walrus-cli --addr 127.0.0.1:9091 metrics | jq -e '.state == "Leader"'
  walrus-cli --addr 127.0.0.1:9091 consume logs --group billing
  walrus-cli status --addrs 127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runShell(cmd, a)
		},
	}
	f := cmd.PersistentFlags()
	f.StringVar(&a.addr, "addr", defAddr, "client address HOST:PORT of the node (env WALRUS_ADDR)")
	f.DurationVar(&a.timeout, "timeout", 5*time.Second, "deadline for connecting plus one request (per request in shell, watch and bench)")
	f.BoolVar(&a.pretty, "pretty", false, "indent JSON replies (the shell always does)")
	f.StringVar(&a.tlsCA, "tls-ca", a.io.Getenv("WALRUS_TLS_CA"), "speak TLS, verifying the node's certificate with this CA file (PEM; env WALRUS_TLS_CA)")
	f.StringVar(&a.tlsCert, "tls-cert", a.io.Getenv("WALRUS_TLS_CERT"), "client certificate (PEM) for a node with tls.client_ca_file; implies TLS (env WALRUS_TLS_CERT)")
	f.StringVar(&a.tlsKey, "tls-key", a.io.Getenv("WALRUS_TLS_KEY"), "key of --tls-cert (PEM; env WALRUS_TLS_KEY)")
	f.StringVar(&a.user, "user", "", "authenticate as this user (AUTH on every connection); the password comes from WALRUS_PASSWORD or a prompt")
	cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := a.loadTLS(); err != nil {
			return err
		}
		return a.resolvePassword(cmd)
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	cmd.AddCommand(
		newRegisterCmd(a),
		newPutCmd(a),
		newGetCmd(a),
		newStateCmd(a),
		newMetricsCmd(a),
		newDoCmd(a),
		newStatusCmd(a),
		newTopicsCmd(a),
		newCreateCmd(a),
		newAlterCmd(a),
		newDeleteCmd(a),
		newOffsetsCmd(a),
		newSeekCmd(a),
		newFetchCmd(a),
		newCommitCmd(a),
		newCommittedCmd(a),
		newGroupsCmd(a),
		newConsumeCmd(a),
		newWatchCmd(a),
		newBenchCmd(a),
		newUserCmd(a),
	)
	return cmd
}

// Argument validators that report usage errors (exit 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " "))
	}
	return nil
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s needs %s (got %d argument(s))", cmd.CommandPath(), names, len(args))
		}
		return nil
	}
}

func minArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s needs %s", cmd.CommandPath(), names)
		}
		return nil
	}
}

// loadTLS builds the client TLS configuration from the --tls-* flags:
// any of them turns TLS on; none keeps plaintext.
func (a *app) loadTLS() error {
	if a.tlsCA == "" && a.tlsCert == "" && a.tlsKey == "" {
		return nil
	}
	cfg, err := tlsconf.ClientConfig(a.tlsCA, a.tlsCert, a.tlsKey)
	if err != nil {
		return usagef("--tls-ca/--tls-cert/--tls-key: %v", err)
	}
	a.tls = cfg
	return nil
}

// withTimeout bounds one request by --timeout (0 = no bound).
func (a *app) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, a.timeout)
}

// splitAddrs parses a comma-separated address list, dropping blanks.
func splitAddrs(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
