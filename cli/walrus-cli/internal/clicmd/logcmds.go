package clicmd

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/status"
)

// The one-shot log commands: offsets, seek, fetch, commit, committed and
// groups. Each dials --addr, makes one typed call (node/client) within
// --timeout and prints the document as compact JSON (--pretty indents) or,
// for groups, as a table.

// call dials --addr and runs fn on the connection, all within --timeout,
// and classifies what fails.
func (a *app) call(ctx context.Context, fn func(ctx context.Context, c conn) error) error {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	c, err := a.dial(ctx, a.addr, a.timeout)
	if err != nil {
		return classify(ctx, a.addr, err)
	}
	defer c.Close()
	return classify(ctx, a.addr, fn(ctx, c))
}

// parseOffset parses an OFFSET argument.
func parseOffset(what, s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, usagef("%s %q is not an offset (a non-negative integer)", what, s)
	}
	return n, nil
}

// parseTime parses a TIME argument: Unix milliseconds, or an RFC 3339 time
// (fractional seconds allowed). It returns Unix milliseconds.
func parseTime(what, s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, usagef("%s %q is before 1970", what, s)
		}
		return n, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, usagef("%s %q is neither Unix milliseconds nor an RFC 3339 time such as 2026-12-04T21:00:00Z", what, s)
	}
	if t.UnixMilli() < 0 {
		return 0, usagef("%s %q is before 1970", what, s)
	}
	return t.UnixMilli(), nil
}

// checkMax validates a --max flag (0 = the node's default).
func checkMax(max int) error {
	if max < 0 || max > client.MaxEntries {
		return usagef("--max %d is not in 1..%d (0 = the node's default, %d)", max, client.MaxEntries, client.DefaultEntries)
	}
	return nil
}

func newOffsetsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "offsets TOPIC",
		Short: `Print the readable offsets of TOPIC as JSON ({"earliest":E,"latest":L}: E..L-1)`,
		Example: `  walrus-cli offsets logs
  walrus-cli offsets logs | jq .latest`,
		Args: exactArgs(1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd.Context(), func(ctx context.Context, c conn) error {
				o, err := c.Offsets(ctx, args[0])
				if err != nil {
					return err
				}
				return writeJSONValue(cmd.OutOrStdout(), o, a.pretty)
			})
		},
	}
}

func newSeekCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "seek TOPIC TIME",
		Short: "Print the first offset of TOPIC appended at or after TIME (Unix ms or RFC 3339)",
		Long: `Print the first offset of TOPIC whose entry was appended at or after TIME,
or the topic's latest offset when every entry is older. TIME is Unix
milliseconds or an RFC 3339 time. The output is the bare offset, for scripts.`,
		Example: `  walrus-cli seek logs 2026-12-04T21:00:00Z
  walrus-cli fetch logs "$(walrus-cli seek logs 1796418000000)"`,
		Args: exactArgs(2, "TOPIC and TIME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ms, err := parseTime("TIME", args[1])
			if err != nil {
				return err
			}
			return a.call(cmd.Context(), func(ctx context.Context, c conn) error {
				off, err := c.Seek(ctx, args[0], ms)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), off)
				return err
			})
		},
	}
}

func newFetchCmd(a *app) *cobra.Command {
	var max int
	cmd := &cobra.Command{
		Use:   "fetch TOPIC OFFSET [--max N]",
		Short: "Print up to --max entries of TOPIC from OFFSET as JSON (no group, nothing recorded)",
		Long: `Read entries of TOPIC from OFFSET on, without a consumer group (the node
records nothing), and print the FETCH document: {"topic","next","entries":
[{"offset","timestamp_ms","payload"},...]}. At the end of the topic entries
is [] and next is OFFSET. Continue with fetch TOPIC <next>. To follow a topic,
see consume.`,
		Example: `  walrus-cli fetch logs 0 --max 10
  walrus-cli fetch logs 0 | jq -r '.entries[].payload'`,
		Args: exactArgs(2, "TOPIC and OFFSET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			off, err := parseOffset("OFFSET", args[1])
			if err != nil {
				return err
			}
			if err := checkMax(max); err != nil {
				return err
			}
			return a.call(cmd.Context(), func(ctx context.Context, c conn) error {
				f, err := c.Fetch(ctx, args[0], off, max)
				if err != nil {
					return err
				}
				if f.Entries == nil {
					f.Entries = []status.Entry{} // [] rather than null, for jq
				}
				return writeJSONValue(cmd.OutOrStdout(), f, a.pretty)
			})
		},
	}
	cmd.Flags().IntVar(&max, "max", 0, fmt.Sprintf("most entries to return, 1..%d (0 = the node's default, %d)", client.MaxEntries, client.DefaultEntries))
	return cmd
}

func newCommitCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "commit GROUP TOPIC OFFSET",
		Short: "Set GROUP's position on TOPIC to OFFSET (its next read starts there); prints OK",
		Example: `  walrus-cli commit billing logs 0                    # replay from the start
  walrus-cli commit billing logs "$(walrus-cli offsets logs | jq .latest)"   # skip to the end`,
		Args: exactArgs(3, "GROUP, TOPIC and OFFSET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			off, err := parseOffset("OFFSET", args[2])
			if err != nil {
				return err
			}
			return a.call(cmd.Context(), func(ctx context.Context, c conn) error {
				if err := c.Commit(ctx, args[0], args[1], off); err != nil {
					return err
				}
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "OK")
				return err
			})
		},
	}
}

func newCommittedCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "committed GROUP TOPIC",
		Short: `Print GROUP's position on TOPIC as JSON ({"offset":O,"lag":N}; offset -1 = nothing committed)`,
		Example: `  walrus-cli committed billing logs
  walrus-cli committed billing logs | jq .lag`,
		Args: exactArgs(2, "GROUP and TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd.Context(), func(ctx context.Context, c conn) error {
				s, err := c.Committed(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				return writeJSONValue(cmd.OutOrStdout(), s, a.pretty)
			})
		},
	}
}

func newGroupsCmd(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "groups [TOPIC]",
		Short: "List consumer groups (all, or those on TOPIC) with offset, lag and pending entries",
		Long: `List the consumer groups the node knows, or those reading TOPIC: the
committed OFFSET (- when nothing is committed), LAG (readable entries from
there on) and PENDING (delivered by READ, not yet acknowledged).`,
		Example: `  walrus-cli groups
  walrus-cli groups logs -o json | jq '.[] | select(.lag > 1000)'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("%s takes at most one TOPIC (got %d arguments)", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			topic := ""
			if len(args) == 1 {
				topic = args[0]
			}
			return a.call(cmd.Context(), func(ctx context.Context, c conn) error {
				gs, err := c.Groups(ctx, topic)
				if err != nil {
					return err
				}
				return writeGroups(cmd, gs, output, a.pretty)
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func writeGroups(cmd *cobra.Command, gs []status.Group, output string, pretty bool) error {
	out := cmd.OutOrStdout()
	if output == "json" {
		return writeJSONValue(out, gs, pretty)
	}
	if len(gs) == 0 {
		_, err := fmt.Fprintln(out, "no groups")
		return err
	}
	t := &table{header: []string{"GROUP", "TOPIC", "OFFSET", "LAG", "PENDING"}}
	for _, g := range gs {
		off := "-"
		if g.Offset >= 0 {
			off = strconv.FormatInt(g.Offset, 10)
		}
		t.add(g.Group, g.Topic, off, strconv.FormatUint(g.Lag, 10), strconv.FormatUint(g.Pending, 10))
	}
	return t.write(out)
}

// fromSpec is a parsed --from: where a reader without a position starts.
type fromSpec struct {
	text   string
	kind   string // "earliest", "latest", "offset" or "time"
	offset uint64
	unixMs int64
}

func parseFrom(s string) (fromSpec, error) {
	f := fromSpec{text: s}
	switch strings.ToLower(s) {
	case "earliest", "latest":
		f.kind = strings.ToLower(s)
		return f, nil
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		f.kind, f.offset = "offset", n
		return f, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.UnixMilli() < 0 {
		return f, usagef("--from %q is not earliest, latest, an offset or an RFC 3339 time such as 2026-12-04T21:00:00Z", s)
	}
	f.kind, f.unixMs = "time", t.UnixMilli()
	return f, nil
}

// resolve turns the spec into an offset of topic, asking the node for the
// ends (OFFSETS) or a time (SEEK) when needed.
func (f fromSpec) resolve(ctx context.Context, c conn, topic string) (uint64, error) {
	switch f.kind {
	case "offset":
		return f.offset, nil
	case "time":
		return c.Seek(ctx, topic, f.unixMs)
	}
	o, err := c.Offsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	if f.kind == "latest" {
		return o.Latest, nil
	}
	return o.Earliest, nil
}
