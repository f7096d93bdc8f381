// Package segment owns this node's segments in both roles. As a segment
// leader it holds the leases (which open segments the committed metadata
// says it leads), one group-committing writer per topic, the fence and
// seal of a rollover, and (through package replicate) the streaming to the
// followers. As a replica it applies appends at exactly the next offset
// under a durable fence epoch, answers recoveries' fences, and catches up
// sealed segments it misses. It reads the store for every reader, bounded
// to what the ack quorum holds while a segment is open.
//
// Lock order (outer first): topicWriter.mu → Manager.leaseSync →
// Manager.leaseMu / Manager.repMu; a
// segment lock (segLock) → epochTable.mu / fenceSet.mu. The locks on the
// right are leaves: nothing is called while holding them that takes
// another lock of this package.
package segment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/diskguard"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/record"
	"github.com/walrus-go/walrus/node/retry"
	"github.com/walrus-go/walrus/node/segment/applyq"
	"github.com/walrus-go/walrus/node/segment/catchup"
	"github.com/walrus-go/walrus/node/segment/contact"
	"github.com/walrus-go/walrus/node/segment/meta"
	"github.com/walrus-go/walrus/node/segment/replicate"
	"github.com/walrus-go/walrus/node/wire"
)

// Config is the segment part's share of the node's configuration.
type Config struct {
	// Self is this node's id.
	Self uint64
	// Dir holds replica_meta (the durable fence epochs).
	Dir               string
	MaxSegmentEntries uint64
	FailureTimeout    time.Duration
	LeaseSyncInterval time.Duration
	// BootIndex bounds the Raft indexes of segments this process may have
	// appended to before it started: its last log index when it restarted
	// with Raft state (a leader appends only after applying the entry that
	// made it leader), 1 for a node that bootstraps a new cluster, 0 when
	// unknown (a node joining without state learns it from its first
	// contact with the Raft leader).
	BootIndex uint64
	// WriterIdle is how long a topic's writer may have no work before it
	// goes away (0: 10 s).
	WriterIdle time.Duration
}

// Contact proves that this node is in contact with the Raft leader (or
// is it) and has applied everything committed before it asked; it
// returns when it asked and the commit index it applied up to (see
// cluster.ConfirmContact).
type Contact interface {
	ConfirmContact(ctx context.Context) (time.Time, uint64, error)
}

// Peer is another member's side of the replica protocol (a wire.Client,
// or this node's own Manager).
type Peer interface {
	ReplicaAppend(ctx context.Context, topic string, seg, epoch, first uint64, entries [][]byte) (uint64, error)
	ReplicaAppendAsync(topic string, seg, epoch, first uint64, entries [][]byte, cb func(uint64, error))
	RecoveryRead(ctx context.Context, topic string, seg, off uint64, max int) ([][]byte, error)
}

// Deps are the parts the segment part uses.
type Deps struct {
	Store   engine.SegmentStore
	FSM     *metadata.FSM
	Contact Contact
	// Peer returns node id's side of the replica protocol.
	Peer func(id uint64) Peer
	// Hint reports, without blocking, that a segment led here is full.
	Hint func(topic string)
	// StepDown asks the Raft leader to recover a segment this node can no
	// longer lead.
	StepDown func(ctx context.Context, topic string, seg uint64) error
	// Floor returns the time of the last entry of a topic before segment
	// seg (0 when there is none or it cannot be read).
	Floor func(ctx context.Context, topic string, seg uint64) int64
	// Disk refuses appends (client and replica) while the disk is full;
	// nil never refuses.
	Disk    *diskguard.Guard
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// segKey names a segment.
type segKey = meta.Key

// Manager is this node's segments.
type Manager struct {
	cfg Config
	Deps

	draining     atomic.Bool
	notLeaderLog retry.Limit
	// lease proves contact with the Raft leader and knows the boot index.
	lease *contact.Clock

	// Segments this node is stepping down from (one goroutine each).
	stepMu   sync.Mutex
	stepping map[segKey]bool
	stepWG   sync.WaitGroup

	// Leases.
	leaseMu   sync.RWMutex
	leases    map[string]uint64 // topic -> open segment led here
	leaseSync sync.Mutex        // serialises syncs (loop and on-demand)
	// Where the table is in the metadata change log (under leaseSync).
	leaseFollow metadata.Follower

	// Writers.
	mu       sync.Mutex
	writers  map[string]*topicWriter
	stop     chan struct{}
	stopped  atomic.Bool
	writerWG sync.WaitGroup

	// counted: topics appended to since the last ChangedCounts.
	countedMu sync.Mutex
	counted   map[string]struct{}

	// Replica apply queues, one per segment streamed here.
	applyQ *applyq.Queues

	// Leader-side replicators and the segments known unreplicated.
	repMu        sync.Mutex
	reps         map[segKey]*replicate.Replicator
	unreplicated map[segKey]error // nil: append freely; else why not
	// retiredLAC: what the quorum confirmed of a segment whose idle
	// replicator retired (the next one starts there).
	retiredLAC map[segKey]uint64
	// replMemory bounds the batches all replicators keep in memory.
	replMemory replicate.Budget
	repStop    chan struct{}
	repClosed  bool

	// Replica side.
	// segLocks serialise replica appends, fences and catch-up of one
	// segment on this node.
	segLocks meta.Locks
	epochs   meta.Epochs
	fences   meta.Fences
}

// replMemoryLimit bounds the appended batches all replicators of a node
// keep for their senders (each segment keeps at most 64 MiB of it).
const replMemoryLimit = 256 << 20

// New builds the segment part; Run runs its loops and Close stops it.
func New(cfg Config, d Deps) *Manager {
	m := &Manager{
		cfg:          cfg,
		Deps:         d,
		leases:       map[string]uint64{},
		writers:      map[string]*topicWriter{},
		stop:         make(chan struct{}),
		reps:         map[segKey]*replicate.Replicator{},
		unreplicated: map[segKey]error{},
		retiredLAC:   map[segKey]uint64{},
		repStop:      make(chan struct{}),
		replMemory:   replicate.Budget{Limit: replMemoryLimit},
		epochs:       meta.Epochs{Dir: cfg.Dir},
		fences:       meta.Fences{Dir: cfg.Dir},
		stepping:     map[segKey]bool{},
		counted:      map[string]struct{}{},
	}
	m.applyQ = applyq.New(m.ReplicaAppend, wire.ErrShuttingDown)
	m.lease = &contact.Clock{Prover: d.Contact, FailureTimeout: cfg.FailureTimeout,
		Draining: m.draining.Load,
		Leading: func() bool {
			m.leaseMu.RLock()
			defer m.leaseMu.RUnlock()
			return len(m.leases) > 0
		}}
	m.lease.SetBootIndex(cfg.BootIndex)
	return m
}

// Run syncs leases every LeaseSyncInterval and at every metadata change,
// and catches up sealed replicas every second, until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c := &catchup.Catcher{FSM: m.FSM, Store: m.Store, Pull: m.ReplicaPull, Self: m.cfg.Self, Logger: m.Logger}
		c.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		m.lease.Run(ctx)
	}()
	m.leaseLoop(ctx)
	wg.Wait()
}

// Close stops every writer and replicator; queued appends fail with
// ErrShuttingDown and pending ones as unacked.
func (m *Manager) Close() {
	m.mu.Lock()
	if !m.stopped.Load() {
		m.stopped.Store(true)
		close(m.stop)
	}
	m.mu.Unlock()
	m.applyQ.Close()
	m.writerWG.Wait()
	m.stepWG.Wait()

	m.repMu.Lock()
	if !m.repClosed {
		m.repClosed = true
		close(m.repStop)
	}
	reps := make([]*replicate.Replicator, 0, len(m.reps))
	for _, r := range m.reps {
		reps = append(reps, r)
	}
	m.reps = map[segKey]*replicate.Replicator{}
	m.repMu.Unlock()
	for _, r := range reps {
		r.Fail(false)
		r.Wait()
	}
}

// Count returns the entries the store holds for a segment (0 when it was
// never written).
func (m *Manager) Count(ctx context.Context, topic string, seg uint64) (uint64, error) {
	return m.count(ctx, engine.SegmentID{Topic: topic, Segment: seg})
}

func (m *Manager) count(ctx context.Context, id engine.SegmentID) (uint64, error) {
	info, err := m.Store.Stat(ctx, id)
	if errors.Is(err, engine.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", id, err)
	}
	return info.Entries, nil
}

// readMaxBytes bounds one read (local or for a remote reader).
const readMaxBytes = 4 << 20

// Read reads a segment held here. An open replicated segment led here is
// read only up to what its ack quorum holds.
func (m *Manager) Read(ctx context.Context, topic string, seg, off uint64, max int) ([][]byte, error) {
	if _, count, sealed, _ := m.FSM.SegmentInfo(topic, seg); sealed {
		// A reader whose metadata still says open (it lags this node's)
		// must not get entries past the sealed count: they were never
		// acknowledged and the cluster dropped them.
		if off >= count {
			return nil, nil
		}
		max = int(min(uint64(max), count-off))
	} else if lim, ok := m.readLimit(topic, seg); ok {
		if off >= lim {
			return nil, nil
		}
		max = int(min(uint64(max), lim-off))
	}
	return m.readStore(ctx, topic, seg, off, max, readMaxBytes)
}

// readStore reads the store; a segment never written here reads empty.
func (m *Manager) readStore(ctx context.Context, topic string, seg, off uint64, n, maxBytes int) ([][]byte, error) {
	id := engine.SegmentID{Topic: topic, Segment: seg}
	entries, err := m.Store.Read(ctx, id, off, n, min(max(maxBytes, 1), readMaxBytes))
	if errors.Is(err, engine.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", id, off, err)
	}
	m.Metrics.ObserveRead(topic, len(entries), record.Bytes(entries))
	return entries, nil
}

// RecoveryRead reads what this node holds of a segment, past the
// ack-quorum bound: a recovery copying a fenced segment's tail.
func (m *Manager) RecoveryRead(ctx context.Context, topic string, seg, off uint64, max int) ([][]byte, error) {
	return m.readStore(ctx, topic, seg, off, max, readMaxBytes)
}

// Drain stops acknowledging appends (clean shutdown): leases count as
// stale from now on, so forwarded appends get NotLeaderError and are
// retried elsewhere.
func (m *Manager) Drain() { m.draining.Store(true) }

// Quiesce waits for flushes in progress and (bounded by ctx and 2 s) for
// replicated batches waiting on their quorum, so a clean shutdown answers
// them instead of failing them as unacked.
func (m *Manager) Quiesce(ctx context.Context) {
	m.mu.Lock()
	ws := make([]*topicWriter, 0, len(m.writers))
	for _, w := range m.writers {
		ws = append(ws, w)
	}
	m.mu.Unlock()
	for _, w := range ws {
		// A flush that started before draining holds the writer's lock;
		// taking it once waits for that flush.
		w.mu.Lock()
		w.mu.Unlock() //nolint:staticcheck // a barrier, not a critical section
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for {
		m.repMu.Lock()
		reps := make([]*replicate.Replicator, 0, len(m.reps))
		for _, r := range m.reps {
			reps = append(reps, r)
		}
		m.repMu.Unlock()
		pending := 0
		var wait <-chan struct{}
		for _, r := range reps {
			p, ch := r.Pending()
			if p > 0 && wait == nil {
				wait = ch
			}
			pending += p
		}
		if pending == 0 {
			return
		}
		select {
		case <-ctx.Done():
			m.Logger.Warn("shutdown: replicated appends still wait for their ack quorum", "batches", pending)
			return
		case <-wait:
		}
	}
}

// Led returns the open segments this node leads (topic -> segment).
func (m *Manager) Led() map[string]uint64 {
	m.leaseMu.RLock()
	defer m.leaseMu.RUnlock()
	return maps.Clone(m.leases)
}

// ChangedCounts lists the open segments led here whose count changed
// since the last call (what delta heartbeats report).
func (m *Manager) ChangedCounts(ctx context.Context) []wire.OpenSegment {
	m.countedMu.Lock()
	changed := m.counted
	m.counted = map[string]struct{}{}
	m.countedMu.Unlock()
	out := make([]wire.OpenSegment, 0, len(changed))
	for topic := range changed {
		if seg, ok := m.leaseFor(topic); ok {
			if c, err := m.Count(ctx, topic, seg); err == nil {
				out = append(out, wire.OpenSegment{Topic: topic, Segment: seg, Count: c})
			}
		}
	}
	return out
}

// OpenCounts lists the open segments led here with their entry counts
// (what full heartbeats report).
func (m *Manager) OpenCounts(ctx context.Context) []wire.OpenSegment {
	led := m.Led()
	out := make([]wire.OpenSegment, 0, len(led))
	for topic, seg := range led {
		c, err := m.Count(ctx, topic, seg)
		if err != nil {
			continue
		}
		out = append(out, wire.OpenSegment{Topic: topic, Segment: seg, Count: c})
	}
	return out
}

// Fetch reads stored entries of a segment held here, bounded by its
// readable count: the sealed count, or for an open segment led here what
// its ack quorum holds. A holder that does not lead an open segment cannot
// tell which of its entries are acknowledged and answers NotLeaderError.
func (m *Manager) Fetch(ctx context.Context, req *wire.FetchRequest) (*wire.FetchReply, error) {
	holder, count, sealed, ok := m.FSM.SegmentInfo(req.Topic, req.Segment)
	if !ok { // this node's metadata lags the caller's: a retry finds it
		return nil, &wire.NotLeaderError{Topic: req.Topic, Segment: req.Segment}
	}
	rep := &wire.FetchReply{Sealed: sealed, Readable: count}
	if !sealed {
		// A holder out of touch with the Raft leader (restarted, paused)
		// may have stale metadata and cannot vouch for a bound.
		lim, replicated := m.readLimit(req.Topic, req.Segment)
		var err error
		switch {
		case holder != m.cfg.Self || !m.leaseFresh():
			err = &wire.NotLeaderError{Topic: req.Topic, Segment: req.Segment, Leader: holder}
		case replicated:
			rep.Readable = lim
		default:
			rep.Readable, err = m.count(ctx, engine.SegmentID{Topic: req.Topic, Segment: req.Segment})
		}
		if err != nil {
			return nil, err
		}
		// Fenced for a rollover whose seal this node has not applied yet
		// (the Raft leader and other nodes may already serve the next
		// segment): nothing is appended here again, so a reader past the
		// bound must retry on newer metadata, not call its offset out of
		// range.
		if fenced, _ := m.fences.Has(meta.Key{Topic: req.Topic, Segment: req.Segment}); fenced {
			rep.Sealed = true
		}
	}
	if req.Max == 0 || req.Offset >= rep.Readable {
		return rep, nil
	}
	entries, err := m.readStore(ctx, req.Topic, req.Segment, req.Offset, int(min(uint64(req.Max), rep.Readable-req.Offset)), int(req.MaxBytes))
	if err != nil {
		return nil, err
	}
	rep.Entries = entries // none: a replica that does not hold it (yet)
	return rep, nil
}

// ReadStored reads this node's copy of a segment from off up to upto (a
// bound from the segment's leader), at most limit entries and ~maxBytes.
func (m *Manager) ReadStored(ctx context.Context, topic string, seg, off uint64, limit, maxBytes int, upto uint64) ([][]byte, error) {
	if off >= upto || limit < 1 {
		return nil, nil
	}
	return m.readStore(ctx, topic, seg, off, int(min(uint64(limit), upto-off)), maxBytes)
}
