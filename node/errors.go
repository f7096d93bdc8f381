package node

import "github.com/walrus-go/walrus/node/wire"

// NotLeaderError says the node asked to append does not hold the lease of
// the topic's open segment (see wire.NotLeaderError).
type NotLeaderError = wire.NotLeaderError

// Errors a node's callers may test for with errors.Is; they are the
// node-wide kinds defined in node/wire.
var (
	ErrUnknownTopic       = wire.ErrUnknownTopic
	ErrFenced             = wire.ErrFenced
	ErrNoRaftLeader       = wire.ErrNoRaftLeader
	ErrSegmentUnavailable = wire.ErrSegmentUnavailable
	ErrShuttingDown       = wire.ErrShuttingDown
)
