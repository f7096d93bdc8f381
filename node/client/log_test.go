package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/status"
)

// logHandler is a tiny in-memory node for the log commands. Topics whose
// name starts with "badjson" answer malformed JSON, "shape" JSON of the
// wrong shape and "okay" a bare OK, so the client's error paths can be
// reached; every request is recorded as its frame text.
type logHandler struct {
	mu        sync.Mutex
	logs      map[string][]status.Entry
	committed map[string]uint64 // "group topic" -> offset
	delivered map[string]uint32 // "group topic offset" -> deliveries
	acked     map[string]bool   // "group topic offset"
	sent      []string
	page      []byte // when set, every FETCH answers it
}

func newLogHandler() *logHandler {
	return &logHandler{logs: map[string][]status.Entry{}, committed: map[string]uint64{}, delivered: map[string]uint32{}, acked: map[string]bool{}}
}

func (h *logHandler) append(topic string, ts int64, payloads ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range payloads {
		h.logs[topic] = append(h.logs[topic], status.Entry{Offset: uint64(len(h.logs[topic])), TimestampMs: ts, Payload: p})
	}
}

func (h *logHandler) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.sent...)
}

func (h *logHandler) Handle(_ context.Context, reqs []protocol.Request) []protocol.Reply {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]protocol.Reply, len(reqs))
	for i, r := range reqs {
		h.sent = append(h.sent, string(r.Encode()))
		out[i] = h.one(r)
	}
	return out
}

func jsonReply(v any) protocol.Reply {
	b, err := json.Marshal(v)
	if err != nil {
		return protocol.Errf("marshal: %v", err)
	}
	return protocol.Raw(b)
}

func (h *logHandler) one(r protocol.Request) protocol.Reply {
	a := r.Args
	num := func(i int) (uint64, bool) {
		if i >= len(a) {
			return 0, false
		}
		n, err := strconv.ParseUint(a[i], 10, 64)
		return n, err == nil
	}
	topicAt := map[string]int{"OFFSETS": 0, "SEEK": 0, "FETCH": 0, "GROUPS": 0, "COMMIT": 1, "COMMITTED": 1, "READ": 1, "ACK": 1}
	at, known := topicAt[r.Command]
	if !known {
		return protocol.UnknownCommand(r.Command)
	}
	if at < len(a) {
		switch t := a[at]; {
		case strings.HasPrefix(t, "badjson"):
			return protocol.Raw([]byte(`{"topic":`))
		case strings.HasPrefix(t, "shape"):
			return protocol.Raw([]byte(`{"topic":5,"entries":"no"}`))
		case strings.HasPrefix(t, "okay"):
			return protocol.OK()
		case strings.HasPrefix(t, "missing"):
			return protocol.Errf("unknown topic %s", t)
		}
	}
	switch r.Command {
	case "OFFSETS":
		return jsonReply(status.Offsets{Topic: a[0], Latest: uint64(len(h.logs[a[0]]))})
	case "SEEK":
		ms, err := strconv.ParseInt(a[1], 10, 64)
		if err != nil {
			return protocol.Errf("bad time %q", a[1])
		}
		off := uint64(len(h.logs[a[0]]))
		for _, e := range h.logs[a[0]] {
			if e.TimestampMs >= ms {
				off = e.Offset
				break
			}
		}
		return jsonReply(status.Seek{Topic: a[0], Offset: off})
	case "FETCH":
		if h.page != nil {
			return protocol.Raw(h.page)
		}
		from, ok := num(1)
		max, okMax := num(2)
		if !ok || (len(a) > 2 && !okMax) {
			return protocol.Errf("usage: FETCH <topic> <offset> [max_entries]")
		}
		if len(a) == 2 {
			max = 100
		}
		log := h.logs[a[0]]
		if from >= uint64(len(log)) {
			return protocol.Empty()
		}
		page := log[from:min(uint64(len(log)), from+max)]
		return jsonReply(status.Fetch{Topic: a[0], Next: from + uint64(len(page)), Entries: page})
	case "COMMIT":
		off, ok := num(2)
		if !ok {
			return protocol.Errf("bad offset")
		}
		h.committed[a[0]+" "+a[1]] = off
		return protocol.OK()
	case "COMMITTED":
		off, ok := h.committed[a[0]+" "+a[1]]
		if !ok {
			return jsonReply(status.Committed{Group: a[0], Topic: a[1], Offset: -1, Lag: uint64(len(h.logs[a[1]]))})
		}
		return jsonReply(status.Committed{Group: a[0], Topic: a[1], Offset: int64(off), Lag: uint64(len(h.logs[a[1]])) - off})
	case "READ":
		max := uint64(100)
		if len(a) > 2 {
			max, _ = num(2)
		}
		var es []status.Entry
		for _, e := range h.logs[a[1]][h.committed[a[0]+" "+a[1]]:] {
			k := fmt.Sprint(a[0], " ", a[1], " ", e.Offset)
			if h.acked[k] || uint64(len(es)) == max {
				continue
			}
			h.delivered[k]++
			e.Deliveries = h.delivered[k]
			es = append(es, e)
		}
		if len(es) == 0 {
			return protocol.Empty()
		}
		return jsonReply(status.Read{Group: a[0], Topic: a[1], Entries: es})
	case "ACK":
		for i := 2; i < len(a); i++ {
			off, ok := num(i)
			if !ok {
				return protocol.Errf("bad offset %q", a[i])
			}
			h.acked[fmt.Sprint(a[0], " ", a[1], " ", off)] = true
		}
		return protocol.OK()
	case "GROUPS":
		gs := []status.Group{}
		for k, off := range h.committed {
			g, t, _ := strings.Cut(k, " ")
			if len(a) == 0 || a[0] == t {
				gs = append(gs, status.Group{Group: g, Topic: t, Offset: int64(off), Lag: uint64(len(h.logs[t])) - off})
			}
		}
		return jsonReply(gs)
	}
	return protocol.UnknownCommand(r.Command)
}

func TestLogCommands(t *testing.T) {
	ctx := t.Context()
	h := newLogHandler()
	c := dial(t, startServer(t, h), client.Options{})
	h.append("logs", 1000, "a", "b \"quoted\"\n")
	h.append("logs", 2000, "c")

	if o, err := c.Offsets(ctx, "logs"); err != nil || o != (status.Offsets{Topic: "logs", Earliest: 0, Latest: 3}) {
		t.Fatalf("Offsets = %+v, %v", o, err)
	}
	if off, err := c.Seek(ctx, "logs", 1500); err != nil || off != 2 {
		t.Fatalf("Seek = %d, %v", off, err)
	}
	f, err := c.Fetch(ctx, "logs", 0, 2)
	if err != nil || f.Next != 2 || len(f.Entries) != 2 || f.Entries[1].Payload != "b \"quoted\"\n" || f.Entries[1].TimestampMs != 1000 {
		t.Fatalf("Fetch = %+v, %v", f, err)
	}
	if f, err = c.Fetch(ctx, "logs", 2, 0); err != nil || f.Next != 3 || len(f.Entries) != 1 || f.Entries[0].Payload != "c" {
		t.Fatalf("Fetch(default max) = %+v, %v", f, err)
	}
	if f, err = c.Fetch(ctx, "logs", 3, 10); err != nil || f.Next != 3 || len(f.Entries) != 0 || f.Topic != "logs" {
		t.Fatalf("Fetch at the end (EMPTY) = %+v, %v", f, err)
	}

	if s, err := c.Committed(ctx, "g1", "logs"); err != nil || s.Offset != -1 || s.Lag != 3 {
		t.Fatalf("Committed(nothing) = %+v, %v", s, err)
	}
	if err := c.Commit(ctx, "g1", "logs", 1); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Committed(ctx, "g1", "logs"); err != nil || s != (status.Committed{Group: "g1", Topic: "logs", Offset: 1, Lag: 2}) {
		t.Fatalf("Committed = %+v, %v", s, err)
	}
	rd, err := c.Read(ctx, "g1", "logs", 1, 1500*time.Microsecond)
	if err != nil || rd.Group != "g1" || len(rd.Entries) != 1 || rd.Entries[0].Offset != 1 || rd.Entries[0].Deliveries != 1 {
		t.Fatalf("Read = %+v, %v", rd, err)
	}
	if err := c.Ack(ctx, "g1", "logs", 1); err != nil {
		t.Fatal(err)
	}
	if rd, err = c.Read(ctx, "g1", "logs", 0, 0); err != nil || len(rd.Entries) != 1 || rd.Entries[0].Offset != 2 {
		t.Fatalf("Read after Ack = %+v, %v", rd, err)
	}
	if rd, err = c.Read(ctx, "g1", "logs", 0, time.Second); err != nil || len(rd.Entries) != 1 || rd.Entries[0].Deliveries != 2 {
		t.Fatalf("redelivery = %+v, %v", rd, err)
	}
	if err := c.Ack(ctx, "g1", "logs", 2, 0); err != nil {
		t.Fatal(err)
	}
	if rd, err = c.Read(ctx, "g1", "logs", 0, 0); err != nil || len(rd.Entries) != 0 || rd.Group != "g1" || rd.Topic != "logs" {
		t.Fatalf("Read with nothing left (EMPTY) = %+v, %v", rd, err)
	}

	if err := c.Commit(ctx, "g2", "other", 0); err != nil {
		t.Fatal(err)
	}
	if gs, err := c.Groups(ctx, "logs"); err != nil || len(gs) != 1 || gs[0].Group != "g1" {
		t.Fatalf("Groups(logs) = %+v, %v", gs, err)
	}
	if gs, err := c.Groups(ctx, ""); err != nil || len(gs) != 2 {
		t.Fatalf("Groups() = %+v, %v", gs, err)
	}
	if gs, err := c.Groups(ctx, "none"); err != nil || gs == nil || len(gs) != 0 {
		t.Fatalf("Groups(none) = %#v, %v", gs, err)
	}

	// The optional arguments are sent only when asked for, and READ's
	// positional ack wait carries the default count in front of it.
	want := map[string]bool{
		"FETCH logs 0 2": true, "FETCH logs 2": true, "READ g1 logs 1 2": true,
		"READ g1 logs": true, "READ g1 logs 100 1000": true, "ACK g1 logs 2 0": true,
		"GROUPS": true, "GROUPS logs": true, "SEEK logs 1500": true,
	}
	for _, r := range h.requests() {
		delete(want, r)
	}
	if len(want) != 0 {
		t.Fatalf("not sent: %v (sent %q)", want, h.requests())
	}
}

func TestLogErrors(t *testing.T) {
	ctx := t.Context()
	h := newLogHandler()
	c := dial(t, startServer(t, h), client.Options{})

	// ERR replies are *ServerError.
	for name, call := range map[string]func() error{
		"offsets":   func() error { _, err := c.Offsets(ctx, "missing"); return err },
		"seek":      func() error { _, err := c.Seek(ctx, "missing", 1); return err },
		"fetch":     func() error { _, err := c.Fetch(ctx, "missing", 0, 0); return err },
		"commit":    func() error { return c.Commit(ctx, "g", "missing", 0) },
		"committed": func() error { _, err := c.Committed(ctx, "g", "missing"); return err },
		"read":      func() error { _, err := c.Read(ctx, "g", "missing", 0, 0); return err },
		"ack":       func() error { return c.Ack(ctx, "g", "missing", 1) },
		"groups":    func() error { _, err := c.Groups(ctx, "missing"); return err },
	} {
		var se *client.ServerError
		if err := call(); !errors.As(err, &se) || se.Message != "unknown topic missing" {
			t.Errorf("%s: %v, want ERR unknown topic missing", name, err)
		}
	}

	// Replies the client cannot use are ErrUnexpectedReply.
	for _, topic := range []string{"badjson", "shape", "okay"} {
		for name, call := range map[string]func() error{
			"offsets":   func() error { _, err := c.Offsets(ctx, topic); return err },
			"fetch":     func() error { _, err := c.Fetch(ctx, topic, 0, 0); return err },
			"committed": func() error { _, err := c.Committed(ctx, "g", topic); return err },
			"read":      func() error { _, err := c.Read(ctx, "g", topic, 0, 0); return err },
			"groups":    func() error { _, err := c.Groups(ctx, topic); return err },
		} {
			if err := call(); !errors.Is(err, client.ErrUnexpectedReply) {
				t.Errorf("%s %s: %v, want ErrUnexpectedReply", name, topic, err)
			}
		}
	}
	for _, topic := range []string{"badjson", "shape"} {
		if err := c.Commit(ctx, "g", topic, 1); !errors.Is(err, client.ErrUnexpectedReply) {
			t.Errorf("commit %s: %v", topic, err)
		}
	}

	// Bad arguments are refused before anything is sent.
	before := len(h.requests())
	for name, tc := range map[string]struct {
		err  error
		call func() error
	}{
		"topic with space": {protocol.ErrInvalidTopic, func() error { _, err := c.Offsets(ctx, "a b"); return err }},
		"topic slash":      {protocol.ErrInvalidTopic, func() error { _, err := c.Fetch(ctx, "a/b", 0, 0); return err }},
		"no topic":         {protocol.ErrUsage, func() error { _, err := c.Seek(ctx, "", 0); return err }},
		"no group":         {protocol.ErrUsage, func() error { return c.Commit(ctx, "", "t", 0) }},
		"group with space": {protocol.ErrUsage, func() error { _, err := c.Committed(ctx, "a b", "t"); return err }},
		"max too big":      {protocol.ErrUsage, func() error { _, err := c.Fetch(ctx, "t", 0, client.MaxEntries+1); return err }},
		"negative max":     {protocol.ErrUsage, func() error { _, err := c.Read(ctx, "g", "t", -1, 0); return err }},
		"negative wait":    {protocol.ErrUsage, func() error { _, err := c.Read(ctx, "g", "t", 0, -time.Second); return err }},
		"ack nothing":      {protocol.ErrUsage, func() error { return c.Ack(ctx, "g", "t") }},
		"groups bad topic": {protocol.ErrInvalidTopic, func() error { _, err := c.Groups(ctx, ".."); return err }},
	} {
		err := tc.call()
		if _, ok := errors.AsType[*protocol.RequestError](err); !ok || !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want a *protocol.RequestError of %v", name, err, tc.err)
		}
	}
	if n := len(h.requests()); n != before {
		t.Fatalf("%d invalid requests were sent: %q", n-before, h.requests()[before:])
	}
}

// A full page crosses the wire and decodes to what the node encoded.
func TestFetchLargePage(t *testing.T) {
	h := newLogHandler()
	c := dial(t, startServer(t, h), client.Options{})
	payloads := make([]string, 5000)
	for i := range payloads {
		payloads[i] = fmt.Sprintf("entry %d \u00e9\t\"%d\" \U0001F9AD", i, i)
	}
	h.append("big", 7, payloads...)
	f, err := c.Fetch(t.Context(), "big", 0, client.MaxEntries)
	if err != nil || len(f.Entries) != len(payloads) || f.Next != uint64(len(payloads)) {
		t.Fatalf("Fetch = %d entries, next %d, %v", len(f.Entries), f.Next, err)
	}
	for i, e := range f.Entries {
		if e.Payload != payloads[i] || e.Offset != uint64(i) || e.TimestampMs != 7 {
			t.Fatalf("entry %d = %+v", i, e)
		}
	}
}

// BenchmarkFetchPage pulls 1,000-entry pages of 100-byte payloads through
// one client over loopback from a node that answers a prepared page: the
// client's share of a consumer's cost (framing, copy, decode).
func BenchmarkFetchPage(b *testing.B) {
	page := status.Fetch{Topic: "bench", Next: 1000}
	for i := range 1000 {
		page.Entries = append(page.Entries, status.Entry{Offset: uint64(i), TimestampMs: 1764111111000, Payload: strings.Repeat("x", 100)})
	}
	body, err := json.Marshal(page)
	if err != nil {
		b.Fatal(err)
	}
	h := newLogHandler()
	h.page = body
	c := dial(b, startServer(b, h), client.Options{})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := c.Fetch(b.Context(), "bench", 0, 1000)
		if err != nil || len(f.Entries) != 1000 {
			b.Fatal(len(f.Entries), err)
		}
		h.mu.Lock()
		h.sent = h.sent[:0]
		h.mu.Unlock()
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "entries/s")
}
