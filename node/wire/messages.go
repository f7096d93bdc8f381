package wire

import (
	"fmt"

	"github.com/walrus-go/walrus/node/metadata"
)

// Method ids. Values are part of the node-to-node protocol.
const (
	MethodAppend        byte = 1  // AppendRequest -> -
	MethodGet           byte = 2  // GetRequest -> GetReply (shared cursor, Raft leader)
	MethodRead          byte = 3  // ReadRequest -> EntriesReply
	MethodPropose       byte = 4  // encoded metadata command -> Result
	MethodCreateTopic   byte = 5  // CreateTopicRequest -> - (Raft leader)
	MethodJoin          byte = 6  // JoinRequest -> - (Raft leader)
	MethodHeartbeat     byte = 7  // Heartbeat -> -
	MethodFence         byte = 8  // FenceRequest -> FenceReply
	MethodUnfence       byte = 9  // SegmentRequest -> -
	MethodStat          byte = 10 // SegmentRequest -> StatReply (what a node's store holds of a segment; retention)
	MethodReadIndex     byte = 11 // - -> CountReply (the Raft leader's commit index)
	MethodRemoveNode    byte = 12 // NodeRequest -> - (Raft leader)
	MethodRollHint      byte = 13 // TopicRequest -> - (segment full; Raft leader)
	MethodStepDown      byte = 14 // SegmentRequest -> - (a segment leader gives up its segment; Raft leader)
	MethodCommitCursors byte = 15 // - -> - (commit the shared cursors now; Raft leader)
	// 32.. are segment replication.
	MethodReplicaAppend byte = 32 // ReplicaAppendRequest -> CountReply
	MethodReplicaFence  byte = 33 // ReplicaFenceRequest -> CountReply
	MethodReplicaPull   byte = 34 // ReplicaPullRequest -> CountReply (copy a sealed segment here)
)

// AppendRequest appends entries to a topic's open segment on its leader.
type AppendRequest struct {
	Topic   string
	Entries [][]byte
}

func (m *AppendRequest) Append(b []byte) []byte {
	e := enc{b: b}
	if e.b == nil {
		e.b = make([]byte, 0, 4+len(m.Topic)+listSize(m.Entries))
	}
	e.str(m.Topic)
	e.list(m.Entries)
	return e.b
}

// appendParts encodes an AppendRequest whose entries are the
// concatenation of parts, straight into an RPC frame (rpc.Encoder).
type appendParts struct {
	topic string
	parts [][][]byte
}

func (a appendParts) EncodedLen() int {
	n := 4 + len(a.topic) + 4
	for _, p := range a.parts {
		n += listSize(p) - 4
	}
	return n
}

func (a appendParts) AppendTo(b []byte) []byte {
	e := enc{b: b}
	e.str(a.topic)
	n := 0
	for _, p := range a.parts {
		n += len(p)
	}
	e.u32(uint32(n))
	for _, p := range a.parts {
		for _, x := range p {
			e.bytes(x)
		}
	}
	return e.b
}

func (m *AppendRequest) Decode(b []byte) error {
	d := dec{b: b}
	m.Topic, m.Entries = d.str(), d.list()
	return d.done("append")
}

// GetRequest hands out up to Max entries of a topic's shared cursor.
// From and ReqID (optional: absent from old senders) name the request, so
// a retry of one whose reply was lost gets the same entries again instead
// of advancing the cursor twice.
type GetRequest struct {
	Topic       string
	Max         uint32
	From, ReqID uint64
}

func (m *GetRequest) Append(b []byte) []byte {
	e := enc{b: b}
	e.str(m.Topic)
	e.u32(m.Max)
	if m.ReqID != 0 {
		e.u64(m.From)
		e.u64(m.ReqID)
	}
	return e.b
}

func (m *GetRequest) Decode(b []byte) error {
	d := dec{b: b}
	m.Topic, m.Max = d.str(), d.u32()
	m.From, m.ReqID = 0, 0
	if d.err == nil && len(d.b) >= 16 {
		m.From, m.ReqID = d.u64(), d.u64()
	}
	return d.done("get")
}

// GetReply carries the entries handed out; More says the byte budget cut
// the call short (entries may remain).
type GetReply struct {
	Entries [][]byte
	More    bool
}

func (m *GetReply) Append(b []byte) []byte {
	e := enc{b: b}
	e.list(m.Entries)
	e.flag(m.More)
	return e.b
}

func (m *GetReply) Decode(b []byte) error {
	d := dec{b: b}
	m.Entries = d.list()
	// The flag is optional for old senders.
	m.More = d.err == nil && len(d.b) > 0 && d.b[0] == 1
	return d.done("get reply")
}

// ReadRequest reads a segment held by the receiver. Recovery (optional:
// absent from old senders) asks for what the replica holds, past the
// ack-quorum bound of an open segment: only a recovery copying a fenced
// segment's tail may read it.
type ReadRequest struct {
	Topic           string
	Segment, Offset uint64
	Max             uint32
	Recovery        bool
}

func (m *ReadRequest) Append(b []byte) []byte {
	e := enc{b: b}
	e.str(m.Topic)
	e.u64(m.Segment)
	e.u64(m.Offset)
	e.u32(m.Max)
	if m.Recovery {
		e.flag(true)
	}
	return e.b
}

func (m *ReadRequest) Decode(b []byte) error {
	d := dec{b: b}
	m.Topic, m.Segment, m.Offset, m.Max = d.str(), d.u64(), d.u64(), d.u32()
	m.Recovery = d.err == nil && len(d.b) > 0 && d.u8() == 1
	return d.done("read")
}

// EntriesReply carries entries read.
type EntriesReply struct {
	Entries [][]byte
}

func (m *EntriesReply) Append(b []byte) []byte {
	e := enc{b: b}
	e.list(m.Entries)
	return e.b
}

func (m *EntriesReply) Decode(b []byte) error {
	d := dec{b: b}
	m.Entries = d.list()
	return d.done("entries")
}

// CreateTopicRequest creates a topic on the Raft leader. RF 0 and Ack -1
// take the leader's defaults; they then travel as no suffix at all, as
// older nodes sent them.
type CreateTopicRequest struct {
	Topic   string
	RF, Ack int
}

func (m *CreateTopicRequest) Append(b []byte) []byte {
	e := enc{b: b}
	e.str(m.Topic)
	if m.RF != 0 || m.Ack != -1 {
		e.u32(uint32(m.RF))
		e.u32(uint32(int32(m.Ack)))
	}
	return e.b
}

func (m *CreateTopicRequest) Decode(b []byte) error {
	d := dec{b: b}
	m.Topic = d.str()
	m.RF, m.Ack = 0, -1
	if d.err == nil && len(d.b) >= 8 {
		m.RF, m.Ack = int(d.u32()), int(int32(d.u32()))
	}
	return d.done("create topic")
}

// JoinRequest asks the Raft leader to add a node as a non-voter.
type JoinRequest struct {
	ID   uint64
	Addr string
}

func (m *JoinRequest) Append(b []byte) []byte {
	e := enc{b: b}
	e.u64(m.ID)
	e.str(m.Addr)
	return e.b
}

func (m *JoinRequest) Decode(b []byte) error {
	d := dec{b: b}
	m.ID, m.Addr = d.u64(), d.str()
	return d.done("join")
}

// OpenSegment is an open segment a node leads and its entry count.
type OpenSegment struct {
	Topic   string
	Segment uint64
	Count   uint64
}

// Heartbeat is what a node tells every other member every heartbeat.
type Heartbeat struct {
	ID, LastIndex, Applied uint64
	Open                   []OpenSegment
	// RaftAddr is the address the sender advertises now (optional for
	// old senders).
	RaftAddr string
	// DiskFull: the sender refuses appends, its replicas' included, until
	// space is freed on its disk. Delta: Open lists only the segments whose
	// count changed since the sender's last heartbeat the receiver took
	// (merge, do not replace). Both optional, in one flags byte written
	// only when one is set; a delta is never disk-full (an older receiver
	// reads the byte as DiskFull == 1).
	DiskFull, Delta bool
}

func (m *Heartbeat) Append(b []byte) []byte {
	e := enc{b: b}
	e.u64(m.ID)
	e.u64(m.LastIndex)
	e.u64(m.Applied)
	e.u32(uint32(len(m.Open)))
	for _, o := range m.Open {
		e.str(o.Topic)
		e.u64(o.Segment)
		e.u64(o.Count)
	}
	e.str(m.RaftAddr)
	if m.DiskFull || m.Delta {
		e.u8(b2u(m.DiskFull) | b2u(m.Delta)<<1)
	}
	return e.b
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func (m *Heartbeat) Decode(b []byte) error {
	d := dec{b: b}
	m.ID, m.LastIndex, m.Applied = d.u64(), d.u64(), d.u64()
	k := d.u32()
	// Each open segment takes at least 20 bytes: bound k first.
	if d.err == nil && uint64(k)*20 > uint64(len(d.b)) {
		d.err = ErrShortPayload
	}
	m.Open = nil
	if d.err == nil && k > 0 {
		m.Open = make([]OpenSegment, 0, k)
	}
	for range k {
		if d.err != nil {
			break
		}
		o := OpenSegment{Topic: d.str(), Segment: d.u64(), Count: d.u64()}
		m.Open = append(m.Open, o)
	}
	m.RaftAddr, m.DiskFull, m.Delta = "", false, false
	if d.err == nil && len(d.b) > 0 {
		m.RaftAddr = d.str()
	}
	if d.err == nil && len(d.b) > 0 {
		f := d.u8()
		m.DiskFull, m.Delta = f&1 != 0, f&2 != 0
	}
	return d.done("heartbeat")
}

// FenceRequest fences a segment on its leader once it holds Min entries.
type FenceRequest struct {
	Topic        string
	Segment, Min uint64
}

func (m *FenceRequest) Append(b []byte) []byte {
	e := enc{b: b}
	e.str(m.Topic)
	e.u64(m.Segment)
	e.u64(m.Min)
	return e.b
}

func (m *FenceRequest) Decode(b []byte) error {
	d := dec{b: b}
	m.Topic, m.Segment, m.Min = d.str(), d.u64(), d.u64()
	return d.done("fence")
}

// FenceReply is the segment's count and whether it is now fenced.
type FenceReply struct {
	Fenced bool
	Count  uint64
}

func (m *FenceReply) Append(b []byte) []byte {
	e := enc{b: b}
	e.flag(m.Fenced)
	e.u64(m.Count)
	return e.b
}

func (m *FenceReply) Decode(b []byte) error {
	if len(b) != 9 {
		return fmt.Errorf("wire: decode fence reply: %d bytes: %w", len(b), ErrShortPayload)
	}
	d := dec{b: b}
	m.Fenced = d.u8() == 1
	m.Count = d.u64()
	return d.done("fence reply")
}

// SegmentRequest names one segment (unfence, step down).
type SegmentRequest struct {
	Topic   string
	Segment uint64
}

func (m *SegmentRequest) Append(b []byte) []byte {
	e := enc{b: b}
	e.str(m.Topic)
	e.u64(m.Segment)
	return e.b
}

func (m *SegmentRequest) Decode(b []byte) error {
	d := dec{b: b}
	m.Topic, m.Segment = d.str(), d.u64()
	return d.done("segment")
}

// CountReply is one number: an entry count, or a commit index.
type CountReply struct {
	Count uint64
}

func (m *CountReply) Append(b []byte) []byte {
	e := enc{b: b}
	e.u64(m.Count)
	return e.b
}

func (m *CountReply) Decode(b []byte) error {
	d := dec{b: b}
	m.Count = d.u64()
	return d.done("count")
}

// NodeRequest names a node (remove node).
type NodeRequest struct {
	ID uint64
}

func (m *NodeRequest) Append(b []byte) []byte {
	e := enc{b: b}
	e.u64(m.ID)
	return e.b
}

func (m *NodeRequest) Decode(b []byte) error {
	d := dec{b: b}
	m.ID = d.u64()
	return d.done("node")
}

// TopicRequest names a topic (roll hint).
type TopicRequest struct {
	Topic string
}

func (m *TopicRequest) Append(b []byte) []byte {
	e := enc{b: b}
	e.str(m.Topic)
	return e.b
}

func (m *TopicRequest) Decode(b []byte) error {
	d := dec{b: b}
	m.Topic = d.str()
	return d.done("topic")
}

// ReplicaAppendRequest stores entries of a segment at offset First under
// Epoch on a replica; no entries is a probe for the replica's count.
type ReplicaAppendRequest struct {
	Topic                 string
	Segment, Epoch, First uint64
	Entries               [][]byte
}

func (m *ReplicaAppendRequest) Append(b []byte) []byte {
	e := enc{b: b}
	if e.b == nil {
		e.b = make([]byte, 0, 28+len(m.Topic)+listSize(m.Entries))
	}
	e.str(m.Topic)
	e.u64(m.Segment)
	e.u64(m.Epoch)
	e.u64(m.First)
	e.list(m.Entries)
	return e.b
}

func (m *ReplicaAppendRequest) Decode(b []byte) error {
	d := dec{b: b}
	m.Topic, m.Segment, m.Epoch, m.First, m.Entries = d.str(), d.u64(), d.u64(), d.u64(), d.list()
	return d.done("replica append")
}

// ReplicaFenceRequest raises a segment's epoch on a replica.
type ReplicaFenceRequest struct {
	Topic          string
	Segment, Epoch uint64
}

func (m *ReplicaFenceRequest) Append(b []byte) []byte {
	e := enc{b: b}
	e.str(m.Topic)
	e.u64(m.Segment)
	e.u64(m.Epoch)
	return e.b
}

func (m *ReplicaFenceRequest) Decode(b []byte) error {
	d := dec{b: b}
	m.Topic, m.Segment, m.Epoch = d.str(), d.u64(), d.u64()
	return d.done("replica fence")
}

// ReplicaPullRequest asks a node to copy a sealed segment from Sources.
type ReplicaPullRequest struct {
	Topic          string
	Segment, Count uint64
	Sources        []uint64
}

func (m *ReplicaPullRequest) Append(b []byte) []byte {
	e := enc{b: b}
	e.str(m.Topic)
	e.u64(m.Segment)
	e.u64(m.Count)
	e.u32(uint32(len(m.Sources)))
	for _, s := range m.Sources {
		e.u64(s)
	}
	return e.b
}

func (m *ReplicaPullRequest) Decode(b []byte) error {
	d := dec{b: b}
	m.Topic, m.Segment, m.Count = d.str(), d.u64(), d.u64()
	k := d.u32()
	if d.err == nil && uint64(k)*8 > uint64(len(d.b)) {
		d.err = ErrShortPayload
	}
	m.Sources = nil
	for range k {
		if d.err != nil {
			break
		}
		m.Sources = append(m.Sources, d.u64())
	}
	return d.done("replica pull")
}

// EncodeResult encodes a metadata proposal's result.
func EncodeResult(r metadata.Result) []byte {
	e := enc{b: []byte{byte(r.Status)}}
	if r.Err != nil {
		e.str(r.Err.Error())
	}
	return e.b
}

// DecodeResult decodes a proposal result; a rejection comes back wrapping
// metadata.ErrInvalidCommand.
func DecodeResult(b []byte) (metadata.Result, error) {
	if len(b) == 0 {
		return metadata.Result{}, fmt.Errorf("wire: decode result: %w", ErrShortPayload)
	}
	r := metadata.Result{Status: metadata.Status(b[0])}
	if len(b) > 1 {
		d := dec{b: b[1:]}
		msg := d.str()
		if err := d.done("result"); err != nil {
			return metadata.Result{}, err
		}
		r.Err = fmt.Errorf("%s: %w", msg, metadata.ErrInvalidCommand)
	}
	return r, nil
}

// Bounds of one append batch: a forwarded AppendRequest and one store
// Append on the segment leader carry at most this much (a larger batch is
// split).
const (
	MaxAppendEntries = 8192
	MaxAppendBytes   = 8 << 20
)
