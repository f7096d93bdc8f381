package consensus

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/walrus-go/walrus/node/metadata"
)

// SnapshotStats describes this node's latest metadata snapshot and its
// latest restore, for the walrus_raft_snapshot_* metrics. Zero values mean
// "not happened since the process started" (Bytes is also read from the
// newest snapshot on disk at Open).
type SnapshotStats struct {
	// Bytes is the size of the latest snapshot this node persisted, or of
	// the newest one on disk at Open.
	Bytes int64
	// PersistDuration is how long the latest Persist took (serialising the
	// state into the snapshot file).
	PersistDuration time.Duration
	// RestoreDuration and RestoreBytes describe the latest Restore: at
	// start-up from the newest snapshot, or a snapshot installed by the
	// leader. Restores counts them.
	RestoreDuration time.Duration
	RestoreBytes    int64
	Restores        uint64
}

// snapStats is updated by measuredFSM from Raft's goroutines and read at
// scrape time.
type snapStats struct {
	bytes, persistNs, restoreNs, restoreBytes atomic.Int64
	restores                                  atomic.Uint64
}

func (s *snapStats) load() SnapshotStats {
	return SnapshotStats{
		Bytes:           s.bytes.Load(),
		PersistDuration: time.Duration(s.persistNs.Load()),
		RestoreDuration: time.Duration(s.restoreNs.Load()),
		RestoreBytes:    s.restoreBytes.Load(),
		Restores:        s.restores.Load(),
	}
}

// measuredFSM is the metadata FSM as Raft sees it: Snapshot and Restore
// are timed and their bytes counted; everything else (Apply, and
// ApplyBatch if the FSM has it) is the FSM's own through embedding.
type measuredFSM struct {
	*metadata.FSM
	st *snapStats
}

func (m measuredFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := m.FSM.Snapshot()
	if err != nil {
		return nil, err
	}
	return &measuredSnapshot{FSMSnapshot: s, st: m.st}, nil
}

func (m measuredFSM) Restore(rc io.ReadCloser) error {
	start := time.Now()
	cr := &countingReader{ReadCloser: rc}
	if err := m.FSM.Restore(cr); err != nil {
		return err
	}
	m.st.restoreNs.Store(int64(time.Since(start)))
	m.st.restoreBytes.Store(cr.n)
	m.st.restores.Add(1)
	return nil
}

type measuredSnapshot struct {
	raft.FSMSnapshot
	st *snapStats
}

func (s *measuredSnapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	cs := &countingSink{SnapshotSink: sink}
	if err := s.FSMSnapshot.Persist(cs); err != nil {
		return err
	}
	s.st.persistNs.Store(int64(time.Since(start)))
	s.st.bytes.Store(cs.n)
	return nil
}

type countingReader struct {
	io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

type countingSink struct {
	raft.SnapshotSink
	n int64
}

func (c *countingSink) Write(p []byte) (int, error) {
	n, err := c.SnapshotSink.Write(p)
	c.n += int64(n)
	return n, err
}

// SnapshotStats reports the latest snapshot's size and the latest
// persist and restore durations.
func (c *Consensus) SnapshotStats() SnapshotStats { return c.snaps.load() }
