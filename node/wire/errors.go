package wire

import (
	"errors"
	"fmt"

	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/rpc"
)

// NotLeaderError says the node asked to append does not hold the lease of
// the topic's open segment. Leader is the leader according to that node's
// committed metadata (0 if unknown).
type NotLeaderError struct {
	Topic   string
	Segment uint64
	Leader  uint64
}

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("NotLeaderError: topic %s segment %d: leader is node %d", e.Topic, e.Segment, e.Leader)
}

// ReplicaGapError tells a segment leader the replica's count so it can
// resend from there.
type ReplicaGapError struct {
	Count uint64
}

func (e *ReplicaGapError) Error() string {
	return fmt.Sprintf("replica holds %d entries: %v", e.Count, ErrReplicaGap)
}

func (e *ReplicaGapError) Unwrap() error { return ErrReplicaGap }

// Errors that keep their kind across the wire (see ToRPC) or that every
// part of the node shares.
var (
	// ErrUnknownTopic: the topic does not exist (and was not auto-created).
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrFenced: the segment is being sealed; retry on the next leader.
	ErrFenced = errors.New("segment fenced for rollover")
	// ErrNoRaftLeader: no Raft leader is known within the wait budget.
	ErrNoRaftLeader = errors.New("no raft leader")
	// ErrSegmentUnavailable: the node holding a segment a read needs
	// cannot be read right now.
	ErrSegmentUnavailable = errors.New("segment unavailable")
	// ErrShuttingDown: the node is stopping.
	ErrShuttingDown = errors.New("node shutting down")
	// ErrRemoteNotLeader: the remote node does not lead the segment.
	ErrRemoteNotLeader = errors.New("remote is not the segment leader")
	// ErrNotRaftLeader: the (remote) node is not the Raft leader.
	ErrNotRaftLeader = errors.New("remote is not the raft leader")
	// ErrReplicaFenced: the replica was fenced at a higher epoch than the
	// sender's.
	ErrReplicaFenced = errors.New("replica fenced at a higher epoch")
	// ErrReplicaGap: the append does not start at the replica's next
	// offset (a *ReplicaGapError carries the replica's count).
	ErrReplicaGap = errors.New("replica append out of order")
	// ErrUnacked: the entries were appended by the segment leader but did
	// not reach the ack quorum; they may or may not survive. Not retried
	// (a retry could store them twice).
	ErrUnacked = errors.New("not acknowledged by the ack quorum (entries may or may not be stored)")
	// ErrNoAddress: no address is known for a node.
	ErrNoAddress = errors.New("no address known for node")
	// ErrShortPayload: a message ended early.
	ErrShortPayload = errors.New("node: short rpc payload")
)

// Error codes carried in rpc.Error.Code. Values are part of the protocol.
const (
	codeNotLeader     uint8 = 1 // segment lease not held here
	codeUnknownTopic  uint8 = 2
	codeNotRaftLeader uint8 = 3
	codeFenced        uint8 = 4
	codeDiskFull      uint8 = 5 // text: DiskFullError.Error()
	codeReplicaFenced uint8 = 32
	codeReplicaGap    uint8 = 33
)

// IsNotRaftLeader reports errors that mean "ask the Raft leader instead".
func IsNotRaftLeader(err error) bool {
	return errors.Is(err, consensus.ErrNotLeader) || errors.Is(err, ErrNotRaftLeader) || errors.Is(err, ErrNoRaftLeader)
}

// IsNotLeader reports a segment-lease refusal, local or remote.
func IsNotLeader(err error) bool {
	var nl *NotLeaderError
	return errors.As(err, &nl) || errors.Is(err, ErrRemoteNotLeader)
}

// ToRPC maps a local error to one that keeps its kind across the wire
// (the one error table; FromRPC is its inverse).
func ToRPC(err error) error {
	var (
		nl  *NotLeaderError
		gap *ReplicaGapError
		df  *DiskFullError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &df):
		// Only the error's own text: a PUT answers exactly it.
		return &rpc.Error{Code: codeDiskFull, Message: df.Error()}
	case errors.Is(err, ErrDiskFull):
		return &rpc.Error{Code: codeDiskFull, Message: err.Error()}
	case errors.Is(err, ErrReplicaFenced):
		return &rpc.Error{Code: codeReplicaFenced, Message: err.Error()}
	case errors.As(err, &gap):
		return &rpc.Error{Code: codeReplicaGap, Message: err.Error()}
	case errors.As(err, &nl):
		return &rpc.Error{Code: codeNotLeader, Message: nl.Error()}
	case errors.Is(err, ErrRemoteNotLeader):
		// Relayed from a third node (a group command whose read went to
		// a segment leader): it stays retryable across the second hop.
		return &rpc.Error{Code: codeNotLeader, Message: err.Error()}
	case errors.Is(err, ErrUnknownTopic):
		return &rpc.Error{Code: codeUnknownTopic, Message: err.Error()}
	case errors.Is(err, ErrFenced):
		return &rpc.Error{Code: codeFenced, Message: err.Error()}
	case IsNotRaftLeader(err):
		return &rpc.Error{Code: codeNotRaftLeader, Message: err.Error()}
	}
	return err
}

// FromRPC turns a remote error back into a typed local one.
func FromRPC(err error) error {
	var re *rpc.Error
	if !errors.As(err, &re) {
		return err
	}
	var kind error
	switch re.Code {
	case codeNotLeader:
		kind = ErrRemoteNotLeader
	case codeUnknownTopic:
		kind = ErrUnknownTopic
	case codeFenced:
		kind = ErrFenced
	case codeNotRaftLeader:
		kind = ErrNotRaftLeader
	case codeReplicaFenced:
		kind = ErrReplicaFenced
	case codeReplicaGap:
		kind = ErrReplicaGap
	case codeDiskFull:
		if df, ok := parseDiskFull(re.Message); ok {
			return df
		}
		kind = ErrDiskFull
	default:
		return err
	}
	return fmt.Errorf("%s: %w", re.Message, kind)
}

// OutcomeUnknown reports errors after which a forwarded append may or may
// not have been stored: retrying could store it twice.
func OutcomeUnknown(err error) bool {
	return errors.Is(err, rpc.ErrConnLost) || errors.Is(err, rpc.ErrTimeout) || errors.Is(err, ErrUnacked)
}
