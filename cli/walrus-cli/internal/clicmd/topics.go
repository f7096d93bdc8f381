package clicmd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// fetchTopics sends the TOPICS extension command and decodes its JSON array.
func (a *app) fetchTopics(ctx context.Context) ([]byte, []map[string]any, error) {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	c, err := a.dial(ctx, a.addr, a.timeout)
	if err != nil {
		return nil, nil, classify(ctx, a.addr, err)
	}
	defer c.Close()
	rep, err := c.DoLine(ctx, "TOPICS")
	if err != nil && !rep.IsErr() { // an ERR reply comes with a *client.ServerError too
		return nil, nil, classify(ctx, a.addr, err)
	}
	if rep.IsErr() {
		msg := string(rep.Body)
		if strings.Contains(strings.ToLower(msg), "unknown command") {
			msg += " (this node does not implement the TOPICS extension)"
		}
		return nil, nil, &replyError{msg: msg}
	}
	var objs []map[string]any
	dec := json.NewDecoder(strings.NewReader(string(rep.Body)))
	dec.UseNumber()
	if err := dec.Decode(&objs); err != nil {
		return nil, nil, fmt.Errorf("TOPICS reply from %s is not a JSON array of objects: %w", a.addr, err)
	}
	return rep.Body, objs, nil
}

func newTopicsCmd(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "List topics (TOPICS extension command) as a table or JSON",
		Example: `  walrus-cli --addr 127.0.0.1:9091 topics
  walrus-cli topics -o json | jq '.[].topic'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			body, objs, err := a.fetchTopics(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				_, err := fmt.Fprintf(out, "%s\n", formatJSON(body, a.pretty))
				return err
			}
			if len(objs) == 0 {
				_, err := fmt.Fprintln(out, "no topics")
				return err
			}
			return objectTable(objs, []string{"topic", "name", "current_segment", "leader_node", "entries", "sealed_segments", "segment_leaders"}).write(out)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}
