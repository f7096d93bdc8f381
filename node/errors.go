package node

import (
	"errors"
	"fmt"

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

// Sentinel errors.
var (
	// ErrUnknownTopic: the topic does not exist (and was not auto-created).
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrFenced: the segment is being sealed; retry on the next leader.
	ErrFenced = errors.New("segment fenced for rollover")
	// ErrNoRaftLeader: no Raft leader is known within the wait budget.
	ErrNoRaftLeader = errors.New("no raft leader")
	// ErrSegmentUnavailable: the node holding a segment the cursor needs
	// cannot be read right now.
	ErrSegmentUnavailable = errors.New("segment unavailable")
	// ErrShuttingDown: the node is stopping.
	ErrShuttingDown = errors.New("node shutting down")
)

// toRPC maps a local error to one that keeps its kind across the wire.
func toRPC(err error) error {
	var nl *NotLeaderError
	switch {
	case errors.As(err, &nl):
		return &rpc.Error{Code: codeNotLeader, Message: nl.Error()}
	case errors.Is(err, ErrUnknownTopic):
		return &rpc.Error{Code: codeUnknownTopic, Message: err.Error()}
	case errors.Is(err, ErrFenced):
		return &rpc.Error{Code: codeFenced, Message: err.Error()}
	case isNotRaftLeader(err):
		return &rpc.Error{Code: codeNotRaftLeader, Message: err.Error()}
	}
	return err
}

// fromRPC turns a remote error back into a typed local one.
func fromRPC(err error) error {
	var re *rpc.Error
	if !errors.As(err, &re) {
		return err
	}
	switch re.Code {
	case codeNotLeader:
		return fmt.Errorf("%s: %w", re.Message, errRemoteNotLeader)
	case codeUnknownTopic:
		return fmt.Errorf("%s: %w", re.Message, ErrUnknownTopic)
	case codeFenced:
		return fmt.Errorf("%s: %w", re.Message, ErrFenced)
	case codeNotRaftLeader:
		return fmt.Errorf("%s: %w", re.Message, errRemoteNotRaftLeader)
	}
	return err
}

var (
	errRemoteNotLeader     = errors.New("remote is not the segment leader")
	errRemoteNotRaftLeader = errors.New("remote is not the raft leader")
)

func isNotLeader(err error) bool {
	var nl *NotLeaderError
	return errors.As(err, &nl) || errors.Is(err, errRemoteNotLeader)
}
