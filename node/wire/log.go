package wire

import "context"

// Messages of the log commands: segment fetches with the segment's
// readable bound, and consumer-group calls relayed to the group
// coordinator (the Raft leader).

// Log method ids (part of the node-to-node protocol).
const (
	MethodFetch byte = 16 // FetchRequest -> FetchReply (a segment's holder)
	MethodGroup byte = 17 // GroupRequest -> GroupReply (the group coordinator, on the Raft leader)
)

// FetchRequest reads a segment held by the receiver, at most Max entries
// and about MaxBytes (at least one entry when one is readable).
type FetchRequest struct {
	Topic           string
	Segment, Offset uint64
	Max, MaxBytes   uint32
}

func (m *FetchRequest) Append(b []byte) []byte {
	e := enc{b: b}
	e.str(m.Topic)
	e.u64(m.Segment)
	e.u64(m.Offset)
	e.u32(m.Max)
	e.u32(m.MaxBytes)
	return e.b
}

func (m *FetchRequest) Decode(b []byte) error {
	d := dec{b: b}
	m.Topic, m.Segment, m.Offset, m.Max, m.MaxBytes = d.str(), d.u64(), d.u64(), d.u32(), d.u32()
	return d.done("fetch")
}

// FetchReply carries the stored entries read and the segment's readable
// count on the holder: its sealed count (Sealed), or for an open segment
// the entries its ack quorum holds. Sealed is also set for an open segment
// its leader has fenced for a rollover not applied there yet: no entry
// will be appended to it again.
type FetchReply struct {
	Readable uint64
	Sealed   bool
	Entries  [][]byte
}

func (m *FetchReply) Append(b []byte) []byte {
	e := enc{b: b}
	if e.b == nil {
		e.b = make([]byte, 0, 13+listSize(m.Entries))
	}
	e.u64(m.Readable)
	e.flag(m.Sealed)
	e.list(m.Entries)
	return e.b
}

func (m *FetchReply) Decode(b []byte) error {
	d := dec{b: b}
	m.Readable = d.u64()
	m.Sealed = d.u8() == 1
	m.Entries = d.list()
	return d.done("fetch reply")
}

// Group operations.
const (
	GroupRead byte = iota + 1
	GroupAck
	GroupCommit
	GroupCommitted
	GroupList
	// GroupDelete forgets the group's committed offset in the topic.
	GroupDelete
)

// GroupRequest is one consumer-group command. Offsets holds the offsets
// of an ACK, or the one offset of a COMMIT. Topic is empty for a GROUPS
// of every topic.
type GroupRequest struct {
	Op           byte
	Group, Topic string
	Max          uint32
	AckWaitMs    uint32
	Offsets      []uint64
}

func (m *GroupRequest) Append(b []byte) []byte {
	e := enc{b: b}
	e.u8(m.Op)
	e.str(m.Group)
	e.str(m.Topic)
	e.u32(m.Max)
	e.u32(m.AckWaitMs)
	e.u32(uint32(len(m.Offsets)))
	for _, o := range m.Offsets {
		e.u64(o)
	}
	return e.b
}

func (m *GroupRequest) Decode(b []byte) error {
	d := dec{b: b}
	m.Op, m.Group, m.Topic, m.Max, m.AckWaitMs = d.u8(), d.str(), d.str(), d.u32(), d.u32()
	k := d.u32()
	if d.err == nil && uint64(k)*8 > uint64(len(d.b)) {
		d.err = ErrShortPayload
	}
	m.Offsets = nil
	for range k {
		if d.err != nil {
			break
		}
		m.Offsets = append(m.Offsets, d.u64())
	}
	return d.done("group")
}

// GroupReply is the client reply the coordinator built: its kind (a
// protocol.ReplyKind) and body, relayed verbatim.
type GroupReply struct {
	Kind byte
	Body []byte
}

func (m *GroupReply) Append(b []byte) []byte {
	e := enc{b: b}
	e.u8(m.Kind)
	e.bytes(m.Body)
	return e.b
}

func (m *GroupReply) Decode(b []byte) error {
	d := dec{b: b}
	m.Kind, m.Body = d.u8(), d.bytes()
	return d.done("group reply")
}

func (c Client) Fetch(ctx context.Context, req *FetchRequest) (*FetchReply, error) {
	var r FetchReply
	return &r, c.call(ctx, MethodFetch, req, &r)
}

func (c Client) Group(ctx context.Context, req *GroupRequest) (*GroupReply, error) {
	var r GroupReply
	return &r, c.call(ctx, MethodGroup, req, &r)
}

// StatReply reports what a node's store holds of one segment (the answer
// to MethodStat, whose request is a SegmentRequest).
type StatReply struct {
	Entries, Bytes uint64
}

func (m *StatReply) Append(b []byte) []byte {
	e := enc{b: b}
	e.u64(m.Entries)
	e.u64(m.Bytes)
	return e.b
}

func (m *StatReply) Decode(b []byte) error {
	d := dec{b: b}
	m.Entries, m.Bytes = d.u64(), d.u64()
	return d.done("stat reply")
}

func (c Client) Stat(ctx context.Context, topic string, seg uint64) (entries, bytes uint64, err error) {
	var r StatReply
	err = c.call(ctx, MethodStat, &SegmentRequest{Topic: topic, Segment: seg}, &r)
	return r.Entries, r.Bytes, err
}
