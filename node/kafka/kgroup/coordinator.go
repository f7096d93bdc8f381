package kgroup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Kafka error codes used here (see franz-go's pkg/kerr for names).
const (
	errNone                    int16 = 0
	errOffsetOutOfRange        int16 = 1
	errUnknownTopicOrPartition int16 = 3
	errCoordinatorNotAvail     int16 = 15
	errIllegalGeneration       int16 = 22
	errInconsistentProtocol    int16 = 23
	errInvalidGroupID          int16 = 24
	errUnknownMemberID         int16 = 25
	errInvalidSessionTimeout   int16 = 26
	errRebalanceInProgress     int16 = 27
	errNonEmptyGroup           int16 = 68
	errGroupIDNotFound         int16 = 69
	errGroupMaxSize            int16 = 81
	errMemberIDRequired        int16 = 79
	errGroupSubscribed         int16 = 86
	errUnknownServer           int16 = -1
)

// Clock is the time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc.
type Timer interface{ Stop() bool }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return time.AfterFunc(d, f)
}

// Commit is one committed offset.
type Commit struct {
	Topic     string
	Partition int32
	Offset    int64
	Metadata  string
}

// Errors an Offsets commit may wrap, answered per partition; any other
// error is COORDINATOR_NOT_AVAILABLE (the client retries).
var (
	// ErrUnknownPartition: the partition does not exist
	// (UNKNOWN_TOPIC_OR_PARTITION).
	ErrUnknownPartition = errors.New("unknown topic or partition")
	// ErrInvalidOffset: the store refuses the offset, e.g. past the end of
	// the partition (OFFSET_OUT_OF_RANGE).
	ErrInvalidOffset = errors.New("offset refused")
)

// Offsets stores committed offsets; the composition root implements it over
// node/group (Raft-committed), mapping (topic, partition) to a Walrus log.
type Offsets interface {
	// Commit stores the offsets (the coordinator passes one at a time, so
	// each partition gets its own answer).
	Commit(ctx context.Context, group string, commits []Commit) error
	// Committed returns ok=false when nothing is committed.
	Committed(ctx context.Context, group, topic string, partition int32) (Commit, bool, error)
	ListCommitted(ctx context.Context, group string) ([]Commit, error)
	Delete(ctx context.Context, group, topic string, partition int32) error
	// Groups lists groups with committed offsets.
	Groups(ctx context.Context) ([]string, error)
	DeleteGroup(ctx context.Context, group string) error
}

// Config bounds and times the coordinator. Zero fields take defaults.
type Config struct {
	// InitialDelay is group.initial.rebalance.delay.ms: how long the first
	// join of an empty group waits for more members (Kafka: 3 s; default
	// here 100 ms so tests and small clusters start fast).
	InitialDelay time.Duration
	MinSession   time.Duration // default 6 s (Kafka)
	MaxSession   time.Duration // default 30 min (Kafka)
	MaxMembers   int           // per group, default 1000
	MaxGroups    int           // default 10000
	MaxMetadata  int           // bytes per member protocol metadata/assignment, default 1 MiB
	Clock        Clock
	Logger       *slog.Logger
}

func (c *Config) defaults() {
	if c.InitialDelay < 0 {
		c.InitialDelay = 0
	} else if c.InitialDelay == 0 {
		c.InitialDelay = 100 * time.Millisecond
	}
	if c.MinSession == 0 {
		c.MinSession = 6 * time.Second
	}
	if c.MaxSession == 0 {
		c.MaxSession = 30 * time.Minute
	}
	if c.MaxMembers == 0 {
		c.MaxMembers = 1000
	}
	if c.MaxGroups == 0 {
		c.MaxGroups = 10000
	}
	if c.MaxMetadata == 0 {
		c.MaxMetadata = 1 << 20
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Coordinator is the membership state of the groups this node coordinates.
// One mutex guards everything: handlers are short and never block holding it.
type Coordinator struct {
	cfg     Config
	offsets Offsets

	mu     sync.Mutex
	closed bool
	done   chan struct{}
	groups map[string]*group
}

// New returns a coordinator; Close stops its timers and waiting calls.
func New(cfg Config, offsets Offsets) *Coordinator {
	cfg.defaults()
	return &Coordinator{cfg: cfg, offsets: offsets, done: make(chan struct{}), groups: map[string]*group{}}
}

// Close stops every timer and unblocks waiting JoinGroup/SyncGroup calls,
// which answer COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	close(c.done)
	for _, g := range c.groups {
		g.stopTimers()
	}
	c.groups = map[string]*group{}
}

func newMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	if len(clientID) > 64 {
		clientID = clientID[:64]
	}
	return clientID + "-" + hex.EncodeToString(b[:])
}
