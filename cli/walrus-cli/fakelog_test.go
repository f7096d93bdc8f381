package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/status"
)

// fakeBaseMs is the append time of offset 0 in the fake; offset n was
// appended at fakeBaseMs + n seconds, so SEEK is predictable.
const fakeBaseMs = 1764111111000

// fakeLog is the fake node's state for the log commands: every PUT is also
// appended to the topic's log. Groups have a committed offset; READ leases
// unacknowledged entries from it for ack_wait_ms; ACK drops the leases and
// moves the committed offset over the acknowledged prefix. Guarded by
// fakeNode.mu.
type fakeLog struct {
	entries   map[string][]status.Entry
	committed map[groupTopic]uint64
	leases    map[groupTopic]map[uint64]time.Time // offset -> lease end
	acked     map[groupTopic]map[uint64]bool
	delivered map[groupTopic]map[uint64]uint32
	sent      []string // every log request, as its frame text
}

type groupTopic struct{ group, topic string }

func newFakeLog() fakeLog {
	return fakeLog{
		entries:   map[string][]status.Entry{},
		committed: map[groupTopic]uint64{},
		leases:    map[groupTopic]map[uint64]time.Time{},
		acked:     map[groupTopic]map[uint64]bool{},
		delivered: map[groupTopic]map[uint64]uint32{},
	}
}

func (l *fakeLog) append(topic, payload string) {
	n := uint64(len(l.entries[topic]))
	l.entries[topic] = append(l.entries[topic], status.Entry{Offset: n, TimestampMs: fakeBaseMs + int64(n)*1000, Payload: payload})
}

func logJSON(v any) protocol.Reply {
	b, err := json.Marshal(v)
	if err != nil {
		return protocol.Errf("marshal: %v", err)
	}
	return protocol.Raw(b)
}

// logCommand answers the log commands; ok is false for other commands.
// Called with f.mu held.
func (f *fakeNode) logCommand(r protocol.Request) (rep protocol.Reply, ok bool) {
	topicAt := map[string]int{"OFFSETS": 0, "SEEK": 0, "FETCH": 0, "GROUPS": 0, "COMMIT": 1, "COMMITTED": 1, "READ": 1, "ACK": 1}
	at, known := topicAt[r.Command]
	if !known {
		return protocol.Reply{}, false
	}
	l := &f.log
	l.sent = append(l.sent, string(r.Encode()))
	a := r.Args
	if at >= len(a) && r.Command != "GROUPS" {
		return protocol.Errf("wrong arguments for %s", r.Command), true
	}
	var gt groupTopic
	if at < len(a) {
		if _, exists := f.topics[a[at]]; !exists {
			return protocol.Errf("unknown topic %s", a[at]), true
		}
		gt.topic = a[at]
		if at == 1 {
			gt.group = a[0]
		}
	}
	num := func(i int, def uint64) (uint64, bool) {
		if i >= len(a) {
			return def, true
		}
		n, err := strconv.ParseUint(a[i], 10, 64)
		return n, err == nil
	}
	log := l.entries[gt.topic]
	switch r.Command {
	case "OFFSETS":
		return logJSON(status.Offsets{Topic: gt.topic, Latest: uint64(len(log))}), true
	case "SEEK":
		ms, err := strconv.ParseInt(a[1], 10, 64)
		if err != nil {
			return protocol.Errf("bad time %q", a[1]), true
		}
		off := uint64(len(log))
		for _, e := range log {
			if e.TimestampMs >= ms {
				off = e.Offset
				break
			}
		}
		return logJSON(status.Seek{Topic: gt.topic, Offset: off}), true
	case "FETCH":
		from, ok1 := num(1, 0)
		max, ok2 := num(2, 100)
		if !ok1 || !ok2 || max == 0 || max > 10000 {
			return protocol.Errf("usage: FETCH <topic> <offset> [max_entries]"), true
		}
		if from > uint64(len(log)) {
			return protocol.Errf("offset %d is past the end %d", from, len(log)), true
		}
		if from == uint64(len(log)) {
			return protocol.Empty(), true
		}
		page := log[from:min(uint64(len(log)), from+max)]
		return logJSON(status.Fetch{Topic: gt.topic, Next: from + uint64(len(page)), Entries: page}), true
	case "COMMIT":
		off, ok := num(2, 0)
		if !ok || len(a) != 3 {
			return protocol.Errf("usage: COMMIT <group> <topic> <offset>"), true
		}
		l.committed[gt] = off
		return protocol.OK(), true
	case "COMMITTED":
		off, ok := l.committed[gt]
		if !ok {
			return logJSON(status.Committed{Group: gt.group, Topic: gt.topic, Offset: -1, Lag: uint64(len(log))}), true
		}
		return logJSON(status.Committed{Group: gt.group, Topic: gt.topic, Offset: int64(off), Lag: uint64(len(log)) - off}), true
	case "READ":
		return l.read(gt, log, a), true
	case "ACK":
		if len(a) < 3 {
			return protocol.Errf("usage: ACK <group> <topic> <offset>..."), true
		}
		if l.acked[gt] == nil {
			l.acked[gt] = map[uint64]bool{}
		}
		for i := 2; i < len(a); i++ {
			off, ok := num(i, 0)
			if !ok {
				return protocol.Errf("bad offset %q", a[i]), true
			}
			l.acked[gt][off] = true
			delete(l.leases[gt], off)
		}
		for l.acked[gt][l.committed[gt]] {
			l.committed[gt]++
		}
		return protocol.OK(), true
	case "GROUPS":
		gs := []status.Group{}
		for k, off := range l.committed {
			if len(a) == 0 || a[0] == k.topic {
				gs = append(gs, status.Group{Group: k.group, Topic: k.topic, Offset: int64(off), Lag: uint64(len(l.entries[k.topic])) - off, Pending: uint64(len(l.leases[k]))})
			}
		}
		return logJSON(gs), true
	}
	return protocol.Reply{}, false
}

func (l *fakeLog) read(gt groupTopic, log []status.Entry, a []string) protocol.Reply {
	max, wait := uint64(100), uint64(30000)
	var err error
	if len(a) > 2 {
		if max, err = strconv.ParseUint(a[2], 10, 64); err != nil || max == 0 || max > 10000 {
			return protocol.Errf("bad max_entries %q", a[2])
		}
	}
	if len(a) > 3 {
		if wait, err = strconv.ParseUint(a[3], 10, 64); err != nil {
			return protocol.Errf("bad ack_wait_ms %q", a[3])
		}
	}
	if l.leases[gt] == nil {
		l.leases[gt] = map[uint64]time.Time{}
		l.delivered[gt] = map[uint64]uint32{}
	}
	now := time.Now()
	var es []status.Entry
	for _, e := range log[min(l.committed[gt], uint64(len(log))):] {
		if uint64(len(es)) == max {
			break
		}
		if end, leased := l.leases[gt][e.Offset]; l.acked[gt][e.Offset] || (leased && now.Before(end)) {
			continue
		}
		l.leases[gt][e.Offset] = now.Add(time.Duration(wait) * time.Millisecond)
		l.delivered[gt][e.Offset]++
		e.Deliveries = l.delivered[gt][e.Offset]
		es = append(es, e)
	}
	if len(es) == 0 {
		return protocol.Empty()
	}
	return logJSON(status.Read{Group: gt.group, Topic: gt.topic, Entries: es})
}

// logRequests returns the log requests received so far, as frame text.
func (f *fakeNode) logRequests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log.sent...)
}

// committedOffset returns group's committed offset on topic (-1 = none).
func (f *fakeNode) committedOffset(group, topic string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	off, ok := f.log.committed[groupTopic{group, topic}]
	if !ok {
		return -1
	}
	return int64(off)
}

// sentWith counts the log requests that start with prefix.
func (f *fakeNode) sentWith(prefix string) int {
	n := 0
	for _, r := range f.logRequests() {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}
