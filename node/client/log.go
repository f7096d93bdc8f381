package client

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/status"
)

// The log commands (node extensions; the client cannot import node).
const (
	cmdOffsets   = "OFFSETS"
	cmdSeek      = "SEEK"
	cmdFetch     = "FETCH"
	cmdCommit    = "COMMIT"
	cmdCommitted = "COMMITTED"
	cmdRead      = "READ"
	cmdAck       = "ACK"
	cmdGroups    = "GROUPS"
)

// DefaultEntries is how many entries FETCH and READ return when not told.
const DefaultEntries = 100

// MaxEntries is the most entries one FETCH or READ may ask for; the node
// refuses more.
const MaxEntries = 10000

// Offsets returns the readable range of topic: Earliest..Latest-1.
func (c *Client) Offsets(ctx context.Context, topic string) (status.Offsets, error) {
	var o status.Offsets
	req, err := logRequest(cmdOffsets, false, topic)
	if err != nil {
		return o, err
	}
	err = c.decodeJSON(ctx, req, &o)
	return o, err
}

// Seek returns the first offset of topic whose append time is at or after
// unixMs (milliseconds since the Unix epoch), or the topic's latest offset
// when every entry is older.
func (c *Client) Seek(ctx context.Context, topic string, unixMs int64) (uint64, error) {
	var s status.Seek
	req, err := logRequest(cmdSeek, false, topic, strconv.FormatInt(unixMs, 10))
	if err != nil {
		return 0, err
	}
	err = c.decodeJSON(ctx, req, &s)
	return s.Offset, err
}

// Fetch reads up to max entries of topic from offset on, without a group
// (nothing is recorded on the node). max 0 means the node's default (100);
// otherwise it must be 1..MaxEntries. At the end of the topic (the node
// answers EMPTY) it returns a Fetch with no entries and Next = offset, so
// a caller can always continue at Next.
//
// The payloads of one reply share one allocation: keeping one entry keeps
// the whole page's text alive.
func (c *Client) Fetch(ctx context.Context, topic string, offset uint64, max int) (status.Fetch, error) {
	args := []string{topic, strconv.FormatUint(offset, 10)}
	if err := checkMax(cmdFetch, max); err != nil {
		return status.Fetch{}, err
	}
	if max > 0 {
		args = append(args, strconv.Itoa(max))
	}
	req, err := logRequest(cmdFetch, false, args...)
	if err != nil {
		return status.Fetch{}, err
	}
	r, err := c.Do(ctx, req)
	if err != nil {
		return status.Fetch{}, err
	}
	var f status.Fetch
	switch r.Kind {
	case protocol.ReplyEmpty:
		return status.Fetch{Topic: topic, Next: offset}, nil
	case protocol.ReplyRaw:
		if err := decodeFetch(r.Body, &f); err != nil {
			return status.Fetch{}, fmt.Errorf("walrus %s: FETCH: %w in %q: %w", c.addr, err, truncate(r.Body), ErrUnexpectedReply)
		}
		return f, nil
	}
	return status.Fetch{}, fmt.Errorf("walrus %s: FETCH: got %q: %w", c.addr, truncate(r.Encode()), ErrUnexpectedReply)
}

// Commit records offset as group's position on topic: the next READ of the
// group starts there (entries before it count as consumed).
func (c *Client) Commit(ctx context.Context, group, topic string, offset uint64) error {
	req, err := logRequest(cmdCommit, true, group, topic, strconv.FormatUint(offset, 10))
	if err != nil {
		return err
	}
	return c.expectOK(ctx, req)
}

// Committed returns group's position on topic. Offset is -1 when the group
// has committed nothing there.
func (c *Client) Committed(ctx context.Context, group, topic string) (status.Committed, error) {
	var s status.Committed
	req, err := logRequest(cmdCommitted, true, group, topic)
	if err != nil {
		return s, err
	}
	err = c.decodeJSON(ctx, req, &s)
	return s, err
}

// Read leases up to max entries of topic to group for ackWait; entries not
// acknowledged (Ack) in time are delivered again, with Deliveries counting
// the attempts. max 0 and ackWait 0 mean the node's defaults (100 entries,
// 30 s); ackWait is sent in whole milliseconds, rounded up. When there is
// nothing to deliver (EMPTY) the Read has no entries.
func (c *Client) Read(ctx context.Context, group, topic string, max int, ackWait time.Duration) (status.Read, error) {
	if err := checkMax(cmdRead, max); err != nil {
		return status.Read{}, err
	}
	if ackWait < 0 {
		return status.Read{}, &protocol.RequestError{Kind: protocol.ErrUsage, Message: fmt.Sprintf("READ: negative ack wait %v", ackWait)}
	}
	args := []string{group, topic}
	if max > 0 || ackWait > 0 {
		n := max
		if n == 0 {
			n = DefaultEntries // the ack wait is positional, so the count must be sent
		}
		args = append(args, strconv.Itoa(n))
	}
	if ackWait > 0 {
		ms := (ackWait + time.Millisecond - 1) / time.Millisecond
		args = append(args, strconv.FormatInt(int64(ms), 10))
	}
	req, err := logRequest(cmdRead, true, args...)
	if err != nil {
		return status.Read{}, err
	}
	r, err := c.Do(ctx, req)
	if err != nil {
		return status.Read{}, err
	}
	var rd status.Read
	switch r.Kind {
	case protocol.ReplyEmpty:
		return status.Read{Group: group, Topic: topic}, nil
	case protocol.ReplyRaw:
		if err := decodeRead(r.Body, &rd); err != nil {
			return status.Read{}, fmt.Errorf("walrus %s: READ: %w in %q: %w", c.addr, err, truncate(r.Body), ErrUnexpectedReply)
		}
		return rd, nil
	}
	return status.Read{}, fmt.Errorf("walrus %s: READ: got %q: %w", c.addr, truncate(r.Encode()), ErrUnexpectedReply)
}

// Ack acknowledges entries of topic that READ delivered to group, so they
// are not delivered again. At least one offset is required.
func (c *Client) Ack(ctx context.Context, group, topic string, offsets ...uint64) error {
	if len(offsets) == 0 {
		return &protocol.RequestError{Kind: protocol.ErrUsage, Message: "ACK requires at least one offset"}
	}
	args := make([]string, 0, 2+len(offsets))
	args = append(args, group, topic)
	for _, o := range offsets {
		args = append(args, strconv.FormatUint(o, 10))
	}
	req, err := logRequest(cmdAck, true, args...)
	if err != nil {
		return err
	}
	return c.expectOK(ctx, req)
}

// Groups lists the consumer groups with their position, lag and pending
// (delivered, unacknowledged) entries: all of them, or those on topic when
// topic is not "". The slice is empty, not nil, when there are none.
func (c *Client) Groups(ctx context.Context, topic string) ([]status.Group, error) {
	var args []string
	if topic != "" {
		args = []string{topic}
	}
	req, err := logRequest(cmdGroups, false, args...)
	if err != nil {
		return nil, err
	}
	var gs []status.Group
	if err := c.decodeJSON(ctx, req, &gs); err != nil {
		return nil, err
	}
	if gs == nil {
		gs = []status.Group{} // "null" from a node is not worth an error
	}
	return gs, nil
}

// logRequest builds a log command whose arguments start with a group
// (withGroup) and then a topic. The topic is checked like the topics of the
// core commands and the group must be one non-empty word, so a mistake
// cannot turn into a different request. Only GROUPS may omit its topic.
func logRequest(cmd string, withGroup bool, args ...string) (protocol.Request, error) {
	topicAt := 0
	if withGroup {
		if len(args) == 0 || args[0] == "" {
			return protocol.Request{}, &protocol.RequestError{Kind: protocol.ErrUsage, Message: cmd + " requires a group"}
		}
		topicAt = 1
	}
	if topicAt < len(args) || cmd != cmdGroups {
		topic := ""
		if topicAt < len(args) {
			topic = args[topicAt]
		}
		if err := checkTopic(cmd, topic); err != nil {
			return protocol.Request{}, err
		}
	}
	req := protocol.Request{Command: cmd, Args: args}
	if err := protocol.ValidateRequest(req); err != nil {
		return protocol.Request{}, err
	}
	return req, nil
}

// checkTopic applies the core commands' topic rules (engine.ValidateTopic,
// through protocol) to a log command's topic.
func checkTopic(cmd, topic string) error {
	if topic == "" {
		return &protocol.RequestError{Kind: protocol.ErrUsage, Message: cmd + " requires a topic"}
	}
	return protocol.ValidateRequest(protocol.Request{Command: protocol.CmdState, Topic: topic})
}

func checkMax(cmd string, max int) error {
	if max < 0 || max > MaxEntries {
		return &protocol.RequestError{Kind: protocol.ErrUsage, Message: fmt.Sprintf("%s: max entries %d is not in 0..%d", cmd, max, MaxEntries)}
	}
	return nil
}
