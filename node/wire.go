package node

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Internal RPC methods. Values are part of the node-to-node protocol.
const (
	methodAppend      byte = 1  // topic, entries -> -
	methodGet         byte = 2  // topic, max -> entries (shared cursor, Raft leader)
	methodRead        byte = 3  // topic, segment, offset, max -> entries
	methodPropose     byte = 4  // encoded metadata command -> status
	methodCreateTopic byte = 5  // topic -> - (Raft leader picks the segment leader)
	methodJoin        byte = 6  // id, raft addr -> -
	methodHeartbeat   byte = 7  // id, last index, applied index -> -
	methodFence       byte = 8  // topic, segment, min entries -> fenced, count
	methodUnfence     byte = 9  // topic, segment -> -
	methodStat        byte = 10 // topic, segment -> count
	methodReadIndex   byte = 11 // - -> Raft leader's commit index
	methodRemoveNode  byte = 12 // id -> - (Raft leader)
	methodRollHint    byte = 13 // topic -> - (segment full; Raft leader)
	// 32.. are reserved for segment replication (issue 4): append streams
	// from a segment leader to its replicas, epoch fencing, catch-up reads.
)

// Error codes carried in rpc.Error.Code.
const (
	codeGeneric       uint8 = 0
	codeNotLeader     uint8 = 1 // segment lease not held here
	codeUnknownTopic  uint8 = 2
	codeNotRaftLeader uint8 = 3
	codeFenced        uint8 = 4
)

var errShortPayload = errors.New("node: short rpc payload")

type enc struct{ b []byte }

func (e *enc) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) str(s string) { e.u32(uint32(len(s))); e.b = append(e.b, s...) }
func (e *enc) bytes(p []byte) {
	e.u32(uint32(len(p)))
	e.b = append(e.b, p...)
}
func (e *enc) list(ps [][]byte) {
	e.u32(uint32(len(ps)))
	for _, p := range ps {
		e.bytes(p)
	}
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) need(n int) bool {
	if d.err != nil {
		return false
	}
	if len(d.b) < n {
		d.err = errShortPayload
		return false
	}
	return true
}

func (d *dec) u64() uint64 {
	if !d.need(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *dec) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *dec) bytes() []byte {
	n := d.u32()
	if !d.need(int(n)) {
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) str() string { return string(d.bytes()) }

func (d *dec) list() [][]byte {
	n := d.u32()
	// Each element takes at least 4 bytes: bound n before allocating.
	if d.err != nil || uint64(n)*4 > uint64(len(d.b)) {
		if d.err == nil {
			d.err = errShortPayload
		}
		return nil
	}
	out := make([][]byte, 0, n)
	for range n {
		p := d.bytes()
		if d.err != nil {
			return nil
		}
		out = append(out, p)
	}
	return out
}

func (d *dec) done() error {
	if d.err != nil {
		return fmt.Errorf("node: decode rpc payload: %w", d.err)
	}
	return nil
}
