package clicmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/chzyer/readline"
	"github.com/spf13/cobra"

	"github.com/walrus-go/walrus/node/protocol"
)

const shellHelp = `Commands are sent to the node as typed (case-insensitive):
  REGISTER <topic>          create a topic (idempotent)              -> OK
  PUT <topic> <payload...>  append; the payload is the rest of line  -> OK
  GET <topic>               read the next message (shared cursor)    -> OK <payload> | EMPTY
  STATE <topic>             topic metadata                           -> JSON
  METRICS                   Raft metrics of this node                -> JSON
  TOPICS                    all topics (extension)                   -> JSON
  CREATE <topic> [rf=N] [ack=N] [max_age_ms=N] [max_bytes=N] [max_entries=N] -> OK
  ALTER <topic> max_age_ms=N|max_bytes=N|max_entries=N...  retention -> OK
  DELETE <topic>            delete a topic and its data everywhere   -> OK
Log commands (consumer groups keep their position on the node):
  OFFSETS <topic>                          readable range            -> JSON
  SEEK <topic> <unix_ms>                   first offset at/after     -> JSON
  FETCH <topic> <offset> [max]             entries, no group         -> JSON | EMPTY
  COMMIT <group> <topic> <offset>          set a group's position    -> OK
  COMMITTED <group> <topic>                a group's position, lag   -> JSON
  READ <group> <topic> [max] [ack_wait_ms] lease entries to a group  -> JSON | EMPTY
  ACK <group> <topic> <offset>...          acknowledge read entries  -> OK
  GROUPS [<topic>]                         groups, lag, pending      -> JSON
Any other line is sent as it is; the node answers ERR for what it does not know.
Shell commands: help, exit, quit (or Ctrl-D).`

// shellWords are the words Tab completes at the start of a line: every
// command in shellHelp, then the shell's own.
var shellWords = [...]string{
	"REGISTER", "PUT", "GET", "STATE", "METRICS", "TOPICS", "CREATE", "ALTER", "DELETE",
	"OFFSETS", "SEEK", "FETCH", "COMMIT", "COMMITTED", "READ", "ACK", "GROUPS",
	"help", "exit", "quit",
}

func shellCompleter() *readline.PrefixCompleter {
	items := make([]readline.PrefixCompleterInterface, len(shellWords))
	for i, w := range shellWords {
		items[i] = readline.PcItem(w)
	}
	return readline.NewPrefixCompleter(items...)
}

// historyPath is where the shell keeps its history: $WALRUS_CLI_HISTORY, or
// ~/.walrus_cli_history; "" (no history) when neither can be determined.
func historyPath(getenv func(string) string) string {
	if p := getenv("WALRUS_CLI_HISTORY"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".walrus_cli_history")
}

// shell is one interactive or scripted session against one node. It keeps
// one connection and redials after a failure, so a node restart does not end
// the session.
type shell struct {
	a         *app
	out       io.Writer
	errw      io.Writer
	pal       palette
	conn      conn
	batchMode bool // input or output is not a terminal: no prompt, stop on connection failure
}

func runShell(cmd *cobra.Command, a *app) error {
	sh := &shell{a: a, out: cmd.OutOrStdout(), errw: cmd.ErrOrStderr()}
	sh.pal = newPalette(sh.out, a.io.Getenv)
	defer sh.closeConn()
	in, isFile := a.io.In.(*os.File)
	if isFile && in == os.Stdin && isTerminal(in) && isTerminal(sh.out) {
		return sh.interactive(cmd.Context())
	}
	sh.batchMode = true
	return sh.scripted(cmd.Context(), a.io.In)
}

func (sh *shell) interactive(ctx context.Context) error {
	rl, err := readline.NewEx(&readline.Config{
		Prompt:            sh.pal.bold("walrus "+sh.a.addr) + "> ",
		HistoryFile:       historyPath(sh.a.io.Getenv),
		HistorySearchFold: true,
		// Saved by hand below, so an AUTH line (a password) never
		// reaches the history file.
		DisableAutoSaveHistory: true,
		AutoComplete:           shellCompleter(),
		InterruptPrompt:        "^C",
		EOFPrompt:              "exit",
		Stdout:                 sh.out,
		Stderr:                 sh.errw,
	})
	if err != nil {
		return fmt.Errorf("start line editor: %w", err)
	}
	defer rl.Close()
	fmt.Fprintf(sh.out, "Connected to %s. Type help for commands, exit or Ctrl-D to leave.\n", sh.a.addr)
	for {
		line, err := rl.Readline()
		switch {
		case errors.Is(err, readline.ErrInterrupt):
			if strings.TrimSpace(line) == "" {
				fmt.Fprintln(sh.out, sh.pal.dim("(type exit or press Ctrl-D to leave)"))
			}
			continue
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return fmt.Errorf("read input: %w", err)
		}
		if f := strings.Fields(line); len(f) > 0 && !strings.EqualFold(f[0], "AUTH") {
			_ = rl.SaveHistory(line)
		}
		if done, err := sh.handle(ctx, line); done || err != nil {
			return err
		}
	}
}

func (sh *shell) scripted(ctx context.Context, in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), protocol.DefaultMaxFrameBytes)
	for sc.Scan() {
		if done, err := sh.handle(ctx, sc.Text()); done || err != nil {
			return err
		}
	}
	return sc.Err()
}

// handle runs one input line; done reports exit/quit.
func (sh *shell) handle(ctx context.Context, line string) (done bool, err error) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return false, nil
	}
	switch strings.ToLower(line) {
	case "exit", "quit", `\q`:
		return true, nil
	case "help", "?", `\h`:
		fmt.Fprintln(sh.out, shellHelp)
		return false, nil
	}
	if ctx.Err() != nil {
		return true, ctx.Err()
	}
	rep, err := sh.send(ctx, line)
	if err != nil {
		err = classify(ctx, sh.a.addr, err)
		if _, isReply := errors.AsType[*replyError](err); isReply {
			fmt.Fprintln(sh.out, sh.pal.red(err.Error()))
			return false, nil
		}
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		if sh.batchMode {
			return true, err
		}
		fmt.Fprintln(sh.errw, sh.pal.red("error: "+err.Error()))
		return false, nil
	}
	sh.printReply(rep)
	return false, nil
}

func (sh *shell) send(ctx context.Context, line string) (protocol.Reply, error) {
	ctx, cancel := sh.a.withTimeout(ctx)
	defer cancel()
	if sh.conn == nil {
		c, err := sh.a.dial(ctx, sh.a.addr, sh.a.timeout)
		if err != nil {
			return protocol.Reply{}, err
		}
		sh.conn = c
	}
	rep, err := sh.conn.DoLine(ctx, line)
	if rep.IsErr() {
		return rep, nil // an ERR reply (also returned as *client.ServerError) is a reply to show
	}
	if err != nil {
		// The connection state is unknown after a failure: redial next time.
		sh.closeConn()
	}
	return rep, err
}

func (sh *shell) closeConn() {
	if sh.conn != nil {
		sh.conn.Close()
		sh.conn = nil
	}
}

func (sh *shell) printReply(rep protocol.Reply) {
	switch rep.Kind {
	case protocol.ReplyOK:
		fmt.Fprintln(sh.out, sh.pal.green("OK"))
	case protocol.ReplyPayload:
		fmt.Fprintf(sh.out, "%s %s\n", sh.pal.green("OK"), rep.Body)
	case protocol.ReplyEmpty:
		fmt.Fprintln(sh.out, sh.pal.yellow("EMPTY"))
	case protocol.ReplyErr:
		fmt.Fprintln(sh.out, sh.pal.red("ERR "+string(rep.Body)))
	default:
		fmt.Fprintln(sh.out, strings.TrimRight(colorJSON(sh.pal, formatJSON(rep.Body, true)), "\n"))
	}
}
