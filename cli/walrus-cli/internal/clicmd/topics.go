package clicmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/status"
)

// fetchTopics sends the TOPICS extension command and returns its JSON as
// sent (for -o json) and decoded (for the table).
func (a *app) fetchTopics(ctx context.Context) ([]byte, []status.TopicSummary, error) {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	c, err := a.dial(ctx, a.addr, a.timeout)
	if err != nil {
		return nil, nil, classify(ctx, a.addr, err)
	}
	defer c.Close()
	body, err := c.TopicsJSON(ctx)
	if se, ok := errors.AsType[*client.ServerError](err); ok {
		msg := se.Message
		if strings.Contains(strings.ToLower(msg), "unknown command") {
			msg += " (this node does not implement the TOPICS extension)"
		}
		return nil, nil, &replyError{msg: msg}
	}
	if err != nil && !errors.Is(err, client.ErrUnexpectedReply) {
		return nil, nil, classify(ctx, a.addr, err)
	}
	var topics []status.TopicSummary
	if err == nil {
		err = json.Unmarshal(body, &topics)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("TOPICS reply from %s is not a JSON array of topic summaries: %w", a.addr, err)
	}
	return body, topics, nil
}

// topicsTable has one row per topic; the columns are TOPICS' field names.
func topicsTable(topics []status.TopicSummary) *table {
	t := &table{header: []string{"topic", "current_segment", "leader_node", "entries", "sealed_segments"}}
	for _, s := range topics {
		t.add(s.Topic, strconv.FormatUint(s.CurrentSegment, 10), strconv.FormatUint(s.LeaderNode, 10),
			strconv.FormatUint(s.Entries, 10), strconv.Itoa(s.SealedSegments))
	}
	return t
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
			body, topics, err := a.fetchTopics(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				_, err := fmt.Fprintf(out, "%s\n", formatJSON(body, a.pretty))
				return err
			}
			if len(topics) == 0 {
				_, err := fmt.Fprintln(out, "no topics")
				return err
			}
			return topicsTable(topics).write(out)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}
