package consensus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/walrus-go/walrus/internal/hclogslog"
	"github.com/walrus-go/walrus/node/metadata"
)

// Sentinel errors.
var (
	// ErrNotLeader: this node is not the Raft leader (the caller forwards).
	ErrNotLeader = errors.New("not the raft leader")
	// ErrNoLeader: no Raft leader is known right now.
	ErrNoLeader = errors.New("no raft leader")
)

// Timing holds the Raft timeouts. CommitTimeout is also how often an idle
// leader tells followers the commit index (hashicorp/raft waits a random
// 1-2x CommitTimeout), i.e. how soon a follower applies a committed entry. Zero fields take DefaultTiming's value.
type Timing struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
}

// DefaultTiming returns the loopback-tuned timeouts documented in the
// package comment.
func DefaultTiming() Timing {
	return Timing{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      2 * time.Millisecond,
	}
}

func (t Timing) withDefaults() Timing {
	d := DefaultTiming()
	if t.HeartbeatTimeout <= 0 {
		t.HeartbeatTimeout = d.HeartbeatTimeout
	}
	if t.ElectionTimeout <= 0 {
		t.ElectionTimeout = d.ElectionTimeout
	}
	if t.LeaderLeaseTimeout <= 0 {
		t.LeaderLeaseTimeout = d.LeaderLeaseTimeout
	}
	if t.CommitTimeout <= 0 {
		t.CommitTimeout = d.CommitTimeout
	}
	return t
}

// Config configures Open.
type Config struct {
	NodeID uint64
	// Dir is the raft_meta directory (created if missing).
	Dir string
	// Layer carries Raft traffic; its Addr() is the advertised address.
	Layer raft.StreamLayer
	FSM   *metadata.FSM
	// Timing: zero value = DefaultTiming.
	Timing Timing
	Logger *slog.Logger
}

// Consensus owns one Raft instance and its stores.
type Consensus struct {
	id        uint64
	advertise raft.ServerAddress
	raft      *raft.Raft
	bolt      *raftboltdb.BoltStore
	transport *raft.NetworkTransport
	fsm       *metadata.FSM
	existing  bool
	logger    *slog.Logger
	snaps     *snapStats
}

// ServerID renders a node id as a Raft server id.
func ServerID(id uint64) raft.ServerID { return raft.ServerID(strconv.FormatUint(id, 10)) }

// ParseServerID parses a Raft server id back into a node id (0 if invalid).
func ParseServerID(id raft.ServerID) uint64 {
	n, _ := strconv.ParseUint(string(id), 10, 64)
	return n
}

// Open creates the stores and starts Raft. It does not bootstrap: call
// Bootstrap when HasExistingState is false and no join address is given.
func Open(cfg Config) (*Consensus, error) {
	if cfg.NodeID == 0 {
		return nil, errors.New("consensus: node id 0")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("consensus: create %s: %w", cfg.Dir, err)
	}
	logger := cfg.Logger
	hl := hclogslog.New(logger, hclogslog.Options{Name: "raft", NameKey: "component"})
	tm := cfg.Timing.withDefaults()

	rc := raft.DefaultConfig()
	rc.LocalID = ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = tm.HeartbeatTimeout
	rc.ElectionTimeout = tm.ElectionTimeout
	rc.LeaderLeaseTimeout = tm.LeaderLeaseTimeout
	rc.CommitTimeout = tm.CommitTimeout
	rc.Logger = hl
	// Metadata is small; snapshot often enough that a restarting node
	// replays little, rarely enough that cursor commits do not churn.
	rc.SnapshotThreshold = 4096
	rc.SnapshotInterval = 30 * time.Second
	rc.TrailingLogs = 4096
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("consensus: raft config: %w", err)
	}

	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("consensus: open log store: %w", err)
	}
	logs, err := raft.NewLogCache(512, bolt)
	if err != nil {
		_ = bolt.Close()
		return nil, fmt.Errorf("consensus: log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 3, hl.Named("snapshot"))
	if err != nil {
		_ = bolt.Close()
		return nil, fmt.Errorf("consensus: snapshot store: %w", err)
	}
	existing, err := raft.HasExistingState(logs, bolt, snaps)
	if err != nil {
		_ = bolt.Close()
		return nil, fmt.Errorf("consensus: inspect state: %w", err)
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  cfg.Layer,
		MaxPool: 4,
		Timeout: 5 * time.Second,
		Logger:  hl.Named("transport"),
	})
	st := &snapStats{}
	if metas, err := snaps.List(); err == nil && len(metas) > 0 {
		st.bytes.Store(metas[0].Size) // newest first
	}
	r, err := raft.NewRaft(rc, measuredFSM{FSM: cfg.FSM, st: st}, logs, bolt, snaps, unpipelined{trans})
	if err != nil {
		_ = trans.Close()
		_ = bolt.Close()
		return nil, fmt.Errorf("consensus: start raft: %w", err)
	}
	return &Consensus{
		id:        cfg.NodeID,
		advertise: raft.ServerAddress(cfg.Layer.Addr().String()),
		raft:      r,
		bolt:      bolt,
		transport: trans,
		fsm:       cfg.FSM,
		existing:  existing,
		logger:    logger,
		snaps:     st,
	}, nil
}

// HasExistingState reports whether Raft state was on disk at Open.
func (c *Consensus) HasExistingState() bool { return c.existing }

// Raft exposes the underlying instance (for stats).
func (c *Consensus) Raft() *raft.Raft { return c.raft }

// Addr is this node's advertised Raft address.
func (c *Consensus) Addr() string { return string(c.advertise) }

// Bootstrap makes this node the single voter of a new cluster.
func (c *Consensus) Bootstrap() error {
	f := c.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{
		{Suffrage: raft.Voter, ID: ServerID(c.id), Address: c.advertise},
	}})
	if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("consensus: bootstrap: %w", err)
	}
	return nil
}

// IsLeader reports whether this node is the Raft leader.
func (c *Consensus) IsLeader() bool { return c.raft.State() == raft.Leader }

// Term is the current Raft term.
func (c *Consensus) Term() uint64 { return c.raft.CurrentTerm() }

// Leader returns the known leader's node id and address (0, "" if none).
func (c *Consensus) Leader() (uint64, string) {
	addr, id := c.raft.LeaderWithID()
	return ParseServerID(id), string(addr)
}

func timeoutOf(ctx context.Context, def time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d > 0 {
			return d
		}
		return time.Millisecond
	}
	return def
}

func mapErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return fmt.Errorf("consensus: %w: %w", ErrNotLeader, err)
	}
	return fmt.Errorf("consensus: %w", err)
}

// Propose replicates cmd and returns Apply's result. It fails with
// ErrNotLeader on a follower. The ctx deadline bounds the wait (10 s when
// ctx has none).
func (c *Consensus) Propose(ctx context.Context, cmd metadata.Command) (metadata.Result, error) {
	b, err := metadata.Encode(cmd)
	if err != nil {
		return metadata.Result{}, err
	}
	return c.ProposeRaw(ctx, b)
}

// ProposeRaw is Propose for an already encoded command (forwarded ones).
func (c *Consensus) ProposeRaw(ctx context.Context, b []byte) (metadata.Result, error) {
	if _, err := metadata.Decode(b); err != nil {
		return metadata.Result{}, err
	}
	if !c.IsLeader() {
		return metadata.Result{}, fmt.Errorf("consensus: propose: %w", ErrNotLeader)
	}
	f := c.raft.Apply(b, timeoutOf(ctx, 10*time.Second))
	if err := f.Error(); err != nil {
		return metadata.Result{}, mapErr(err)
	}
	res, ok := f.Response().(metadata.Result)
	if !ok {
		return metadata.Result{}, fmt.Errorf("consensus: apply returned %T", f.Response())
	}
	return res, nil
}

// Barrier waits until every entry committed before it is applied locally.
func (c *Consensus) Barrier(ctx context.Context) error {
	if err := c.raft.Barrier(timeoutOf(ctx, 10*time.Second)).Error(); err != nil {
		return mapErr(err)
	}
	return nil
}

// Membership is the current Raft configuration.
type Membership struct {
	Voters   []uint64
	Learners []uint64
	Addrs    map[uint64]string
}

// Nodes returns voters and learners together, sorted.
func (m Membership) Nodes() []uint64 {
	out := append(slices.Clone(m.Voters), m.Learners...)
	slices.Sort(out)
	return out
}

// Membership returns the latest Raft configuration.
func (c *Consensus) Membership() (Membership, error) {
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return Membership{}, mapErr(err)
	}
	m := Membership{Voters: []uint64{}, Learners: []uint64{}, Addrs: map[uint64]string{}}
	for _, s := range f.Configuration().Servers {
		id := ParseServerID(s.ID)
		m.Addrs[id] = string(s.Address)
		if s.Suffrage == raft.Voter {
			m.Voters = append(m.Voters, id)
		} else {
			m.Learners = append(m.Learners, id)
		}
	}
	slices.Sort(m.Voters)
	slices.Sort(m.Learners)
	return m, nil
}

// AddNonvoter adds (or re-addresses) a node as a non-voter. A node that is
// already a voter at the same address is left alone.
func (c *Consensus) AddNonvoter(ctx context.Context, id uint64, addr string) error {
	m, err := c.Membership()
	if err != nil {
		return err
	}
	if a, ok := m.Addrs[id]; ok && a == addr {
		return nil
	}
	if err := c.raft.AddNonvoter(ServerID(id), raft.ServerAddress(addr), 0, timeoutOf(ctx, 10*time.Second)).Error(); err != nil {
		return mapErr(err)
	}
	return nil
}

// Promote makes an existing member a voter.
func (c *Consensus) Promote(ctx context.Context, id uint64, addr string) error {
	if err := c.raft.AddVoter(ServerID(id), raft.ServerAddress(addr), 0, timeoutOf(ctx, 10*time.Second)).Error(); err != nil {
		return mapErr(err)
	}
	return nil
}

// Remove removes a member from the Raft configuration.
func (c *Consensus) Remove(ctx context.Context, id uint64) error {
	if err := c.raft.RemoveServer(ServerID(id), 0, timeoutOf(ctx, 10*time.Second)).Error(); err != nil {
		return mapErr(err)
	}
	return nil
}

// Close shuts Raft down and closes the stores. Idempotent enough for one
// caller (the node's Run).
func (c *Consensus) Close() error {
	err := c.raft.Shutdown().Error()
	if cerr := c.transport.Close(); err == nil {
		err = cerr
	}
	if cerr := c.bolt.Close(); err == nil {
		err = cerr
	}
	return err
}

// LastVote returns the term and candidate address of this node's last
// vote, as persisted by raft in the stable store (zero values if none).
func (c *Consensus) LastVote() (term uint64, candidate string) {
	term, _ = c.bolt.GetUint64([]byte("LastVoteTerm"))
	cand, _ := c.bolt.Get([]byte("LastVoteCand"))
	return term, string(cand)
}

// unpipelined is the network transport without pipelined replication.
// hashicorp/raft v1.7.3 can hang in Shutdown when a pipeline is busy: its
// response decoder blocks handing a result to the replication goroutine
// that already stopped, the pipeline's queue fills, and the goroutine
// sending into it never sees the stop (seen as nodes that never finish
// stopping under load). Metadata traffic is small, so plain AppendEntries
// calls cost little.
type unpipelined struct{ *raft.NetworkTransport }

func (unpipelined) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}
