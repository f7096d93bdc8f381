package clicmd

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/protocol"
)

// request dials --addr, sends req and returns the reply, all within
// --timeout. An ERR reply is returned as a reply, not an error.
func (a *app) request(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	c, err := a.dial(ctx, a.addr, a.timeout)
	if err != nil {
		return protocol.Reply{}, classify(ctx, a.addr, err)
	}
	defer c.Close()
	rep, err := c.Do(ctx, req)
	if err != nil {
		return protocol.Reply{}, classify(ctx, a.addr, err)
	}
	return rep, nil
}

// printReply writes a reply the way the one-shot commands do: OK, the raw
// payload (or "OK <payload>" when wire), EMPTY, the JSON body (indented with
// --pretty) on stdout; ERR as an error (stderr, exit 1).
func (a *app) printReply(cmd *cobra.Command, rep protocol.Reply, wire bool) error {
	out := cmd.OutOrStdout()
	switch rep.Kind {
	case protocol.ReplyErr:
		return &replyError{msg: string(rep.Body)}
	case protocol.ReplyOK:
		_, err := fmt.Fprintln(out, "OK")
		return err
	case protocol.ReplyPayload:
		if wire {
			_, err := fmt.Fprintf(out, "OK %s\n", rep.Body)
			return err
		}
		_, err := fmt.Fprintf(out, "%s\n", rep.Body)
		return err
	case protocol.ReplyEmpty:
		_, err := fmt.Fprintln(out, "EMPTY")
		return err
	default:
		_, err := fmt.Fprintf(out, "%s\n", formatJSON(rep.Body, a.pretty))
		return err
	}
}

func (a *app) runOne(cmd *cobra.Command, req protocol.Request, wire bool) error {
	if req.Command != protocol.CmdMetrics {
		// A name with a space would silently change the request's meaning
		// (PUT "a b" x is PUT a with payload "b x"), so check it here.
		if err := engine.ValidateTopic(req.Topic); err != nil {
			return usagef("topic %q: %v", req.Topic, err)
		}
	}
	rep, err := a.request(cmd.Context(), req)
	if err != nil {
		return err
	}
	return a.printReply(cmd, rep, wire)
}

func newRegisterCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "register TOPIC",
		Short:   "Create TOPIC (idempotent); prints OK",
		Example: "  walrus-cli register logs",
		Args:    exactArgs(1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runOne(cmd, protocol.Request{Command: protocol.CmdRegister, Topic: args[0]}, false)
		},
	}
}

func newPutCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "put TOPIC DATA...",
		Short: "Append one message (the DATA words joined by spaces); prints OK",
		Example: `  walrus-cli put logs hello world
  walrus-cli put health-check "$(date +%s)"`,
		Args: minArgs(2, "TOPIC and DATA"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data := strings.Join(args[1:], " ")
			if data == "" {
				return usagef("put needs non-empty DATA")
			}
			return a.runOne(cmd, protocol.Request{Command: protocol.CmdPut, Topic: args[0], Payload: []byte(data)}, false)
		},
	}
}

func newGetCmd(a *app) *cobra.Command {
	var wire bool
	cmd := &cobra.Command{
		Use:   "get TOPIC",
		Short: "Read the next message of TOPIC; prints the payload, or EMPTY",
		Long: `Read the next message of TOPIC at the topic's shared cursor (the read
advances it). Prints the payload exactly as stored, followed by a newline, or
EMPTY when there is nothing to read; both exit 0. With --wire it prints the
protocol reply as is ("OK <payload>"), which tells a payload that is the word
EMPTY from an empty topic.`,
		Example: "  walrus-cli get logs",
		Args:    exactArgs(1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runOne(cmd, protocol.Request{Command: protocol.CmdGet, Topic: args[0]}, wire)
		},
	}
	cmd.Flags().BoolVar(&wire, "wire", false, `print "OK <payload>" as the protocol sends it`)
	return cmd
}

func newStateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "state TOPIC",
		Short:   "Print the topic's metadata JSON (segments and their leaders)",
		Example: "  walrus-cli state logs | jq .leader_node",
		Args:    exactArgs(1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runOne(cmd, protocol.Request{Command: protocol.CmdState, Topic: args[0]}, false)
		},
	}
}

func newMetricsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "metrics",
		Short:   "Print the node's Raft metrics JSON",
		Example: `  walrus-cli --addr 127.0.0.1:9091 metrics | jq -e '.state == "Leader"'`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runOne(cmd, protocol.Request{Command: protocol.CmdMetrics}, false)
		},
	}
}

func newDoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "do COMMAND [ARGS...]",
		Short: "Send any protocol line (e.g. an extension command) and print the reply as sent",
		Long: `Send the words joined by spaces as one protocol frame and print the reply
exactly as the protocol encodes it (OK, OK <payload>, EMPTY, JSON); ERR goes to
stderr with exit 1. Useful for extension commands such as TOPICS.`,
		Example: "  walrus-cli do TOPICS\n  walrus-cli do put logs hello",
		Args:    minArgs(1, "a COMMAND"),
		RunE: func(cmd *cobra.Command, args []string) error {
			line := strings.Join(args, " ")
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			c, err := a.dial(ctx, a.addr, a.timeout)
			if err != nil {
				return classify(ctx, a.addr, err)
			}
			defer c.Close()
			rep, err := c.DoLine(ctx, line)
			if err != nil {
				return classify(ctx, a.addr, err)
			}
			if rep.Kind == protocol.ReplyRaw {
				return a.printReply(cmd, rep, true)
			}
			if rep.Kind == protocol.ReplyErr {
				return &replyError{msg: string(rep.Body)}
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", rep.Encode())
			return err
		},
	}
}
