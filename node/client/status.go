package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/status"
)

// cmdTopics is the TOPICS extension command (node.CmdTopics; the client
// cannot import node).
const cmdTopics = "TOPICS"

// The raw methods (State, Metrics, TopicsJSON) return the reply exactly as
// the server sent it, for callers that print or forward it; the *Doc
// methods decode it into the node/status types.

// State returns the STATE JSON of topic.
func (c *Client) State(ctx context.Context, topic string) (json.RawMessage, error) {
	return c.expectJSON(ctx, protocol.Request{Command: protocol.CmdState, Topic: topic})
}

// Metrics returns the METRICS JSON of the node.
func (c *Client) Metrics(ctx context.Context) (json.RawMessage, error) {
	return c.expectJSON(ctx, protocol.Request{Command: protocol.CmdMetrics})
}

// TopicsJSON returns the TOPICS JSON (an array of topic summaries). A node
// without the extension answers ERR, returned as a *ServerError.
func (c *Client) TopicsJSON(ctx context.Context) (json.RawMessage, error) {
	return c.expectJSON(ctx, protocol.Request{Command: cmdTopics})
}

// StateDoc returns the STATE document of topic.
func (c *Client) StateDoc(ctx context.Context, topic string) (status.State, error) {
	var s status.State
	err := c.decodeJSON(ctx, protocol.Request{Command: protocol.CmdState, Topic: topic}, &s)
	return s, err
}

// MetricsDoc returns the METRICS document of the node.
func (c *Client) MetricsDoc(ctx context.Context) (status.Metrics, error) {
	var m status.Metrics
	err := c.decodeJSON(ctx, protocol.Request{Command: protocol.CmdMetrics}, &m)
	return m, err
}

// TopicsDoc returns the TOPICS document: one summary per topic.
func (c *Client) TopicsDoc(ctx context.Context) ([]status.TopicSummary, error) {
	var ts []status.TopicSummary
	err := c.decodeJSON(ctx, protocol.Request{Command: cmdTopics}, &ts)
	return ts, err
}

func (c *Client) expectJSON(ctx context.Context, req protocol.Request) (json.RawMessage, error) {
	r, err := c.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if r.Kind != protocol.ReplyRaw || !json.Valid(r.Body) {
		return nil, fmt.Errorf("walrus %s: %s: got %q, want JSON: %w", c.addr, req.Command, truncate(r.Encode()), ErrUnexpectedReply)
	}
	return json.RawMessage(r.Body), nil
}

// decodeJSON sends req and decodes its JSON reply into v. A reply whose
// shape does not match v is ErrUnexpectedReply, wrapped together with the
// decoder's error: the server and this client disagree on the document. On
// a *json.UnmarshalTypeError the fields that did match are still set, for
// callers that prefer a partial document to none.
func (c *Client) decodeJSON(ctx context.Context, req protocol.Request, v any) error {
	raw, err := c.expectJSON(ctx, req)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("walrus %s: %s: %w in %q: %w", c.addr, req.Command, err, truncate(raw), ErrUnexpectedReply)
	}
	return nil
}
