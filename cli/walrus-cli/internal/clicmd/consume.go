package clicmd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/status"
)

// consumeOpts are the flags of consume.
type consumeOpts struct {
	topic   string
	group   string
	from    fromSpec
	fromSet bool // --from was given (not its default)
	max     int
	ackWait time.Duration
	count   int
	jsonOut bool
	poll    time.Duration
	errw    io.Writer
	out     *bufio.Writer
	jsonEnc *json.Encoder
	printed int
}

func newConsumeCmd(a *app) *cobra.Command {
	var (
		o    consumeOpts
		from string
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC [--group G] [--from earliest|latest|OFFSET|TIME] [--max N] [--ack-wait D] [--count N]",
		Short: "Print the entries of TOPIC as they arrive, one payload per line, until Ctrl-C or --count",
		Long: `Follow TOPIC and print each entry's payload on a line of its own (with
--json, each entry as one JSON object: offset, timestamp_ms, deliveries,
payload), until Ctrl-C (exit 0) or --count entries.

With --group G it reads as consumer group G (READ, then ACK once the entries
are printed): the node remembers the group's position, several consume
processes in the same group share the entries, and an entry not acknowledged
within --ack-wait (e.g. the process was killed) is delivered again. --from
only places a group that has nothing committed on TOPIC (it commits the
start offset); a group with a position continues from it, and walrus-cli
says on stderr that --from was ignored.

Without --group it reads with FETCH from --from on and the node records
nothing.

--from is earliest (default), latest (only new entries), an offset, or an
RFC 3339 time (the first entry appended at or after it). When the topic has
nothing new, consume asks again every --poll.`,
		Example: `  walrus-cli consume logs                                # everything, then follow
  walrus-cli consume logs --from latest                  # only new entries
  walrus-cli consume logs --group billing --count 100   # 100 entries as group billing
  walrus-cli consume logs --from 2026-12-04T21:00:00Z --json | jq .offset`,
		Args: exactArgs(1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.topic = args[0]
			var err error
			if o.from, err = parseFrom(from); err != nil {
				return err
			}
			o.fromSet = cmd.Flags().Changed("from")
			if err := checkMax(o.max); err != nil {
				return err
			}
			switch {
			case o.count < 0:
				return usagef("--count must not be negative")
			case o.ackWait < 0:
				return usagef("--ack-wait must not be negative")
			case o.ackWait > 0 && o.group == "":
				return usagef("--ack-wait needs --group (only group reads are leased)")
			case o.poll <= 0:
				return usagef("--poll must be positive")
			}
			o.errw = cmd.ErrOrStderr()
			o.out = bufio.NewWriter(cmd.OutOrStdout())
			o.jsonEnc = json.NewEncoder(o.out)
			o.jsonEnc.SetEscapeHTML(false)
			return a.consume(cmd.Context(), &o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.group, "group", "g", "", "consumer group: read with READ/ACK and keep the position on the node")
	f.StringVar(&from, "from", "earliest", "where to start without a committed position: earliest, latest, an offset or an RFC 3339 time")
	f.IntVar(&o.max, "max", 0, fmt.Sprintf("entries per request, 1..%d (0 = the node's default, %d)", client.MaxEntries, client.DefaultEntries))
	f.DurationVar(&o.ackWait, "ack-wait", 0, "with --group: how long read entries stay leased before they are delivered again (0 = the node's default, 30s)")
	f.IntVar(&o.count, "count", 0, "stop after this many entries (0 = until Ctrl-C)")
	f.BoolVar(&o.jsonOut, "json", false, "print each entry as a JSON object (offset, timestamp_ms, deliveries, payload)")
	f.DurationVar(&o.poll, "poll", 500*time.Millisecond, "how long to wait before asking again when there is nothing new")
	return cmd
}

// consume runs the loop. Ctrl-C (ctx cancelled) ends it with no error.
func (a *app) consume(ctx context.Context, o *consumeOpts) error {
	dctx, cancel := a.withTimeout(ctx)
	c, err := a.dial(dctx, a.addr, a.timeout)
	cancel()
	if err != nil {
		return a.consumeErr(ctx, dctx, err)
	}
	defer c.Close()
	if o.group != "" {
		err = a.consumeGroup(ctx, c, o)
	} else {
		err = a.consumeFetch(ctx, c, o)
	}
	if ferr := o.out.Flush(); err == nil {
		err = ferr
	}
	return err
}

// consumeErr classifies err from a call made with reqCtx (ctx bounded by
// --timeout), or drops it when Ctrl-C (ctx cancelled) interrupted the call:
// that is how consume is meant to end. An interrupted call may report an
// I/O error on its connection rather than context.Canceled, so any error
// counts once ctx is done.
func (a *app) consumeErr(ctx, reqCtx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return classify(reqCtx, a.addr, err)
}

// batch is how many entries to ask for next: --max, but no more than
// --count still needs.
func (o *consumeOpts) batch() int {
	if o.count == 0 {
		return o.max
	}
	n := o.max
	if n == 0 {
		n = client.DefaultEntries
	}
	return min(n, o.count-o.printed)
}

func (o *consumeOpts) done() bool { return o.count > 0 && o.printed >= o.count }

// print writes entries, no more than --count still allows, and flushes so
// that a pipe sees every page at once. It returns the entries printed.
func (o *consumeOpts) print(es []status.Entry) ([]status.Entry, error) {
	if o.count > 0 {
		es = es[:min(len(es), o.count-o.printed)]
	}
	for _, e := range es {
		var err error
		if o.jsonOut {
			err = o.jsonEnc.Encode(e)
		} else {
			_, _ = o.out.WriteString(e.Payload)
			err = o.out.WriteByte('\n')
		}
		if err != nil {
			return nil, err
		}
		o.printed++
	}
	return es, o.out.Flush()
}

// idle waits --poll, or returns false when ctx ends first.
func (o *consumeOpts) idle(ctx context.Context) bool {
	t := time.NewTimer(o.poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (a *app) consumeGroup(ctx context.Context, c conn, o *consumeOpts) error {
	if err := a.placeGroup(ctx, c, o); err != nil {
		return err
	}
	for !o.done() {
		rctx, cancel := a.withTimeout(ctx)
		rd, err := c.Read(rctx, o.group, o.topic, o.batch(), o.ackWait)
		cancel()
		if err != nil {
			return a.consumeErr(ctx, rctx, err)
		}
		if len(rd.Entries) == 0 {
			if !o.idle(ctx) {
				return nil
			}
			continue
		}
		printed, err := o.print(rd.Entries)
		if err != nil {
			return err // not acknowledged: delivered again to the next reader
		}
		offsets := make([]uint64, len(printed))
		for i, e := range printed {
			offsets[i] = e.Offset
		}
		// Printed entries are acknowledged even when Ctrl-C came meanwhile,
		// so that they are not delivered twice.
		actx, cancel := a.withTimeout(context.WithoutCancel(ctx))
		err = c.Ack(actx, o.group, o.topic, offsets...)
		cancel()
		if err != nil {
			return classify(actx, a.addr, err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// placeGroup commits --from for a group with nothing committed, and says
// on stderr what it did or why --from did not apply.
func (a *app) placeGroup(ctx context.Context, c conn, o *consumeOpts) (err error) {
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	defer func() {
		if err != nil {
			err = a.consumeErr(ctx, rctx, err)
		}
	}()
	st, err := c.Committed(rctx, o.group, o.topic)
	if err != nil {
		return err
	}
	if st.Offset >= 0 {
		if o.fromSet {
			fmt.Fprintf(o.errw, "walrus-cli: group %s continues on %s at its committed offset %d; --from %s ignored (use commit to move it)\n", o.group, o.topic, st.Offset, o.from.text)
		}
		return nil
	}
	off, err := o.from.resolve(rctx, c, o.topic)
	if err != nil {
		return err
	}
	if err := c.Commit(rctx, o.group, o.topic, off); err != nil {
		return err
	}
	fmt.Fprintf(o.errw, "walrus-cli: group %s had nothing committed on %s; starting at offset %d (--from %s)\n", o.group, o.topic, off, o.from.text)
	return nil
}

func (a *app) consumeFetch(ctx context.Context, c conn, o *consumeOpts) error {
	rctx, cancel := a.withTimeout(ctx)
	next, err := o.from.resolve(rctx, c, o.topic)
	cancel()
	if err != nil {
		return a.consumeErr(ctx, rctx, err)
	}
	for !o.done() {
		rctx, cancel := a.withTimeout(ctx)
		f, err := c.Fetch(rctx, o.topic, next, o.batch())
		cancel()
		if err != nil {
			return a.consumeErr(ctx, rctx, err)
		}
		if len(f.Entries) == 0 {
			if !o.idle(ctx) {
				return nil
			}
			continue
		}
		if _, err := o.print(f.Entries); err != nil {
			return err
		}
		next = f.Next
	}
	return nil
}
