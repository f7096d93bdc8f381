// Package meta keeps the small per-segment facts a replica must not
// forget across a restart, each in a JSON file under replica_meta/ that is
// replaced atomically (write, fsync, rename, fsync the directory): the
// highest fence epoch of each segment, and the segments fenced for a
// rollover that has not been applied yet. It is owned by package segment.
package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Epochs is the highest fence epoch per segment, kept durably in
// replica_meta/epochs.json (beside raft_meta, not in Raft): an append
// carrying a lower epoch is refused. The segment leader writes at epoch 1;
// recovery fences the survivors at a higher epoch before it reads their
// counts, so a deposed leader can never again reach its ack quorum.
type Epochs struct {
	Dir    string
	mu     sync.Mutex
	epochs map[Key]uint64 // absent = 0
	loaded bool
}

type epochRecord struct {
	Topic   string `json:"topic"`
	Segment uint64 `json:"segment"`
	Epoch   uint64 `json:"epoch"`
}

func (t *Epochs) path() string { return filepath.Join(t.Dir, "epochs.json") }

// loadLocked reads the epoch file once.
func (t *Epochs) loadLocked() error {
	if t.loaded {
		return nil
	}
	t.epochs = map[Key]uint64{}
	b, err := os.ReadFile(t.path())
	if errors.Is(err, os.ErrNotExist) {
		t.loaded = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("replica epochs: %w", err)
	}
	var recs []epochRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		return fmt.Errorf("replica epochs %s: %w", t.path(), err)
	}
	for _, r := range recs {
		t.epochs[Key{Topic: r.Topic, Segment: r.Segment}] = r.Epoch
	}
	t.loaded = true
	return nil
}

// Get returns the highest epoch k was fenced with here.
func (t *Epochs) Get(k Key) (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.loadLocked(); err != nil {
		return 0, err
	}
	return t.epochs[k], nil
}

// Raise records epoch for k durably (write a temporary file, fsync,
// rename) before returning; it never lowers an epoch.
func (t *Epochs) Raise(k Key, epoch uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.loadLocked(); err != nil {
		return err
	}
	if t.epochs[k] >= epoch {
		return nil
	}
	t.epochs[k] = epoch
	recs := make([]epochRecord, 0, len(t.epochs))
	for key, e := range t.epochs {
		recs = append(recs, epochRecord{Topic: key.Topic, Segment: key.Segment, Epoch: e})
	}
	b, err := json.Marshal(recs)
	if err != nil {
		return fmt.Errorf("replica epochs: %w", err)
	}
	if err := writeFileSync(t.path(), b); err != nil {
		return fmt.Errorf("replica epochs: %w", err)
	}
	return nil
}

// writeFileSync replaces path with b durably.
func writeFileSync(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Fences is the segments fenced for a rollover whose proposal has not
// been applied yet, kept durably in replica_meta/fences.json: a segment
// leader that restarts between the fence and the rollover must keep
// refusing appends, or it could acknowledge entries past the count the
// rollover seals at.
type Fences struct {
	Dir    string
	mu     sync.Mutex
	fenced map[Key]bool
	loaded bool
}

type fenceRecord struct {
	Topic   string `json:"topic"`
	Segment uint64 `json:"segment"`
}

func (f *Fences) path() string { return filepath.Join(f.Dir, "fences.json") }

func (f *Fences) loadLocked() error {
	if f.loaded {
		return nil
	}
	f.fenced = map[Key]bool{}
	b, err := os.ReadFile(f.path())
	if errors.Is(err, os.ErrNotExist) {
		f.loaded = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("rollover fences: %w", err)
	}
	var recs []fenceRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		return fmt.Errorf("rollover fences %s: %w", f.path(), err)
	}
	for _, r := range recs {
		f.fenced[Key{Topic: r.Topic, Segment: r.Segment}] = true
	}
	f.loaded = true
	return nil
}

// Has reports whether k is fenced.
func (f *Fences) Has(k Key) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.loadLocked(); err != nil {
		return false, err
	}
	return f.fenced[k], nil
}

// Set records (on) or lifts (off) the fence of k durably.
func (f *Fences) Set(k Key, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.loadLocked(); err != nil {
		return err
	}
	if f.fenced[k] == on {
		return nil
	}
	if on {
		f.fenced[k] = true
	} else {
		delete(f.fenced, k)
	}
	recs := make([]fenceRecord, 0, len(f.fenced))
	for key := range f.fenced {
		recs = append(recs, fenceRecord{Topic: key.Topic, Segment: key.Segment})
	}
	b, err := json.Marshal(recs)
	if err != nil {
		return fmt.Errorf("rollover fences: %w", err)
	}
	if err := writeFileSync(f.path(), b); err != nil {
		return fmt.Errorf("rollover fences: %w", err)
	}
	return nil
}

// Key names a segment.
type Key struct {
	Topic   string
	Segment uint64
}
