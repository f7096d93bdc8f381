package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/rpc"
)

// Replica side of segment replication (issue 4).
//
// A segment's replica set is recorded in the metadata (leader first). The
// leader streams its entries to the other members with methodReplicaAppend;
// each member appends them to its own store at exactly its next offset.
// Every member keeps, per segment, the highest epoch it has been fenced
// with, durably (a small file beside raft_meta, not in Raft): an append
// carrying a lower epoch is refused with errReplicaFenced. The segment
// leader writes at epoch 1; recovery fences the survivors at a higher
// epoch before it reads their counts, so a deposed leader can never again
// reach its ack quorum.

// Errors of the replica protocol.
var (
	// errReplicaFenced: the replica was fenced at a higher epoch than the
	// sender's.
	errReplicaFenced = errors.New("replica fenced at a higher epoch")
	// errReplicaGap: the append does not start at the replica's next
	// offset; the error carries the replica's count.
	errReplicaGap = errors.New("replica append out of order")
	// errUnacked: the entries were appended by the segment leader but
	// did not reach the ack quorum; they may or may not survive. Not
	// retried (a retry could store them twice).
	errUnacked = errors.New("not acknowledged by the ack quorum (entries may or may not be stored)")
	// errInjectedDrop: a test switched dropStream on.
	errInjectedDrop = errors.New("replica stream dropped (fault injection)")
)

// replicaGapError tells the leader the replica's count so it can resend.
type replicaGapError struct {
	Count uint64
}

func (e *replicaGapError) Error() string {
	return fmt.Sprintf("replica holds %d entries: %v", e.Count, errReplicaGap)
}

func (e *replicaGapError) Unwrap() error { return errReplicaGap }

// replicaState is this node's replica bookkeeping.
type replicaState struct {
	// mu guards locks and the epoch table.
	mu    sync.Mutex
	locks map[segKey]*sync.Mutex
	// epochs is the highest fence epoch per segment (absent = 0).
	epochs map[segKey]uint64
	loaded bool
	path   string

	// reps are the leader-side replicators of segments led here.
	// dropStream is a fault-injection switch for tests: appends a segment
	// leader streams here (epoch 1) are refused as if the link dropped
	// them; fences and recovery/catch-up copies still get through.
	dropStream atomic.Bool
	// refuseFence (tests) makes this node fail fence requests, as if it
	// were unreachable for recovery.
	refuseFence atomic.Bool

	// complete marks sealed segments held here in full (catch-up done).
	complete map[segKey]bool

	repMu        sync.Mutex
	closed       bool          // stopReplicators ran (guarded by repMu)
	stop         chan struct{} // closed by stopReplicators
	stopOnce     sync.Once
	reps         map[segKey]*replicator
	unreplicated map[segKey]bool // open segments led here with one replica
}

func (s *replicaState) stopCh() chan struct{} {
	s.stopOnce.Do(func() { s.stop = make(chan struct{}) })
	return s.stop
}

func (n *Node) replicaDir() string {
	return filepath.Join(n.cfg.DataDir, fmt.Sprintf("node_%d", n.id), "replica_meta")
}

// segLock returns the lock serialising replica appends, fences and
// catch-up of one segment on this node.
func (n *Node) segLock(k segKey) *sync.Mutex {
	s := &n.repl
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks == nil {
		s.locks = map[segKey]*sync.Mutex{}
	}
	l, ok := s.locks[k]
	if !ok {
		l = &sync.Mutex{}
		s.locks[k] = l
	}
	return l
}

type epochRecord struct {
	Topic   string `json:"topic"`
	Segment uint64 `json:"segment"`
	Epoch   uint64 `json:"epoch"`
}

// loadEpochsLocked reads the epoch file once.
func (n *Node) loadEpochsLocked() error {
	s := &n.repl
	if s.loaded {
		return nil
	}
	s.path = filepath.Join(n.replicaDir(), "epochs.json")
	s.epochs = map[segKey]uint64{}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		s.loaded = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("replica epochs: %w", err)
	}
	var recs []epochRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		return fmt.Errorf("replica epochs %s: %w", s.path, err)
	}
	for _, r := range recs {
		s.epochs[segKey{r.Topic, r.Segment}] = r.Epoch
	}
	s.loaded = true
	return nil
}

// replicaEpoch returns the highest epoch seg was fenced with here.
func (n *Node) replicaEpoch(k segKey) (uint64, error) {
	s := &n.repl
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := n.loadEpochsLocked(); err != nil {
		return 0, err
	}
	return s.epochs[k], nil
}

// raiseEpoch records epoch for seg durably (write to a temporary file,
// fsync, rename) before returning; it never lowers an epoch.
func (n *Node) raiseEpoch(k segKey, epoch uint64) error {
	s := &n.repl
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := n.loadEpochsLocked(); err != nil {
		return err
	}
	if s.epochs[k] >= epoch {
		return nil
	}
	s.epochs[k] = epoch
	recs := make([]epochRecord, 0, len(s.epochs))
	for key, e := range s.epochs {
		recs = append(recs, epochRecord{Topic: key.topic, Segment: key.seg, Epoch: e})
	}
	b, err := json.Marshal(recs)
	if err != nil {
		return fmt.Errorf("replica epochs: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return fmt.Errorf("replica epochs: %w", err)
	}
	tmp := s.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("replica epochs: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("replica epochs: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("replica epochs: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("replica epochs: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("replica epochs: %w", err)
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// replicaAppend stores entries of a segment led elsewhere (or copied by
// recovery/repair) at offset first, under epoch. It returns the local
// count afterwards. Entries this replica already holds are skipped (the
// prefix property: every member holds a prefix of the leader's entries);
// an append past the next offset fails with *replicaGapError. An empty
// entries list just reports the count (a probe). Sealed segments accept
// any epoch (their content up to the sealed count is final) but never an
// entry past the sealed count.
func (n *Node) replicaAppend(ctx context.Context, topic string, seg, epoch, first uint64, entries [][]byte) (uint64, error) {
	k := segKey{topic, seg}
	l := n.segLock(k)
	l.Lock()
	defer l.Unlock()
	_, sealedCount, sealed, _ := n.fsm.SegmentInfo(topic, seg)
	if !sealed {
		cur, err := n.replicaEpoch(k)
		if err != nil {
			return 0, err
		}
		if epoch < cur {
			return 0, fmt.Errorf("%s/%d: append at epoch %d, fenced at %d: %w", topic, seg, epoch, cur, errReplicaFenced)
		}
	}
	id := engine.SegmentID{Topic: topic, Segment: seg}
	count, err := n.segmentCount(id)
	if err != nil {
		return 0, err
	}
	if len(entries) == 0 {
		return count, nil
	}
	if first > count {
		return count, &replicaGapError{Count: count}
	}
	skip := count - first
	if skip >= uint64(len(entries)) {
		return count, nil // already held
	}
	entries = entries[skip:]
	if sealed {
		if count >= sealedCount {
			return count, nil
		}
		if rest := sealedCount - count; uint64(len(entries)) > rest {
			entries = entries[:rest]
		}
	}
	if _, err := n.store.Append(ctx, id, entries); err != nil {
		if errors.Is(err, engine.ErrSealed) {
			return count, nil
		}
		return count, fmt.Errorf("replica append %s: %w", id, err)
	}
	count += uint64(len(entries))
	if sealed && count >= sealedCount {
		_, _ = n.store.Seal(ctx, id)
	}
	return count, nil
}

// replicaFence raises the segment's epoch here and returns the local
// count. After it returns, no append at a lower epoch is accepted, so the
// count can only grow through appends at the fence epoch (recovery).
func (n *Node) replicaFence(topic string, seg, epoch uint64) (uint64, error) {
	k := segKey{topic, seg}
	l := n.segLock(k)
	l.Lock()
	defer l.Unlock()
	if err := n.raiseEpoch(k, epoch); err != nil {
		return 0, err
	}
	n.stopReplicatorFenced(k)
	return n.segmentCount(engine.SegmentID{Topic: topic, Segment: seg})
}

// Wire encoding of the replica methods.

func encodeReplicaAppend(topic string, seg, epoch, first uint64, entries [][]byte) []byte {
	size := 32 + len(topic)
	for _, p := range entries {
		size += 4 + len(p)
	}
	e := enc{b: make([]byte, 0, size)}
	e.str(topic)
	e.u64(seg)
	e.u64(epoch)
	e.u64(first)
	e.list(entries)
	return e.b
}

// handleReplicaAppendRPC serves methodReplicaAppend; it answers the count.
func (n *Node) handleReplicaAppendRPC(ctx context.Context, payload []byte) ([]byte, error) {
	d := dec{b: payload}
	topic := d.str()
	seg, epoch, first := d.u64(), d.u64(), d.u64()
	entries := d.list()
	if err := d.done(); err != nil {
		return nil, err
	}
	if epoch == 1 && n.repl.dropStream.Load() {
		return nil, errInjectedDrop
	}
	count, err := n.replicaAppend(ctx, topic, seg, epoch, first, entries)
	if err != nil {
		return nil, err
	}
	var e enc
	e.u64(count)
	return e.b, nil
}

func (n *Node) handleReplicaFenceRPC(payload []byte) ([]byte, error) {
	d := dec{b: payload}
	topic := d.str()
	seg, epoch := d.u64(), d.u64()
	if err := d.done(); err != nil {
		return nil, err
	}
	if n.repl.refuseFence.Load() {
		return nil, errInjectedDrop
	}
	count, err := n.replicaFence(topic, seg, epoch)
	if err != nil {
		return nil, err
	}
	var e enc
	e.u64(count)
	return e.b, nil
}

// fenceReplica fences seg on node id (locally when id is this node).
func (n *Node) fenceReplica(ctx context.Context, id uint64, topic string, seg, epoch uint64) (uint64, error) {
	if id == n.id {
		return n.replicaFence(topic, seg, epoch)
	}
	var e enc
	e.str(topic)
	e.u64(seg)
	e.u64(epoch)
	resp, err := n.call(ctx, id, methodReplicaFence, e.b)
	if err != nil {
		return 0, err
	}
	d := dec{b: resp}
	c := d.u64()
	return c, d.done()
}

// appendReplica sends entries to node id's replica of seg (locally when id
// is this node) and returns its count afterwards.
func (n *Node) appendReplica(ctx context.Context, id uint64, topic string, seg, epoch, first uint64, entries [][]byte) (uint64, error) {
	if id == n.id {
		return n.replicaAppend(ctx, topic, seg, epoch, first, entries)
	}
	resp, err := n.call(ctx, id, methodReplicaAppend, encodeReplicaAppend(topic, seg, epoch, first, entries))
	if err != nil {
		return 0, err
	}
	d := dec{b: resp}
	c := d.u64()
	return c, d.done()
}

// Internal RPC methods of segment replication (32.. are reserved for it in
// wire.go).
const (
	methodReplicaAppend byte = 32 // topic, segment, epoch, first, entries -> count
	methodReplicaFence  byte = 33 // topic, segment, epoch -> count
	methodReplicaPull   byte = 34 // topic, segment, count, sources -> count (copy a sealed segment here)
)

func (n *Node) dispatchReplicaRPC(ctx context.Context, method byte, payload []byte) ([]byte, error) {
	switch method {
	case methodReplicaAppend:
		return n.handleReplicaAppendRPC(ctx, payload)
	case methodReplicaFence:
		return n.handleReplicaFenceRPC(payload)
	case methodReplicaPull:
		return n.handleReplicaPullRPC(ctx, payload)
	}
	return nil, &rpc.Error{Message: fmt.Sprintf("unknown rpc method %d", method)}
}

// handleCreate serves "CREATE <topic> [rf=<n>] [ack=<n>]": REGISTER with a
// per-topic replication factor (1..7, capped at the live voters when a
// segment opens) and ack quorum (1..rf; default a majority of the set).
// An existing topic keeps its settings (idempotent OK, like REGISTER).
func (n *Node) handleCreate(ctx context.Context, args []string) protocol.Reply {
	if len(args) < 1 || len(args) > 3 {
		return protocol.Errf("usage: CREATE <topic> [rf=<n>] [ack=<n>]")
	}
	topic := args[0]
	if err := engine.ValidateTopic(topic); err != nil {
		return protocol.ErrReply(err)
	}
	rf, ack := 0, -1
	for _, a := range args[1:] {
		key, val, ok := strings.Cut(strings.ToLower(a), "=")
		v, err := strconv.Atoi(val)
		if !ok || err != nil {
			return protocol.Errf("invalid argument %q: want rf=<n> or ack=<n>", a)
		}
		switch key {
		case "rf":
			if v < 1 || v > maxReplicationFactor {
				return protocol.Errf("rf=%d: must be 1..%d", v, maxReplicationFactor)
			}
			rf = v
		case "ack":
			if v < 1 {
				return protocol.Errf("ack=%d: must be >= 1", v)
			}
			ack = v
		default:
			return protocol.Errf("invalid argument %q: want rf=<n> or ack=<n>", a)
		}
	}
	effRF := rf
	if effRF == 0 {
		effRF = n.cfg.ReplicationFactor
	}
	if ack > effRF {
		return protocol.Errf("ack=%d: must be <= rf (%d)", ack, effRF)
	}
	if err := n.createTopicWith(ctx, topic, rf, ack); err != nil {
		return n.errReply(err)
	}
	return protocol.OK()
}

// appendOutcomeUnknown reports errors after which a forwarded append may
// or may not have been stored: retrying could store it twice, so the
// client gets ERR instead.
func appendOutcomeUnknown(err error) bool {
	return errors.Is(err, rpc.ErrConnLost) || errors.Is(err, rpc.ErrTimeout) || errors.Is(err, errUnacked)
}
