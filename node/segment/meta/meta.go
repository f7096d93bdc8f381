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

// Key names a segment.
type Key struct {
	Topic   string
	Segment uint64
}

// Epochs is the highest fence epoch per segment, kept durably in
// replica_meta/epochs.json (beside raft_meta, not in Raft): an append
// carrying a lower epoch is refused. The segment leader writes at epoch 1;
// recovery fences the survivors at a higher epoch before it reads their
// counts, so a deposed leader can never again reach its ack quorum.
type Epochs struct {
	Dir string
	t   table
}

// Get returns the highest epoch k was fenced with here (0: never).
func (e *Epochs) Get(k Key) (uint64, error) {
	v, _, err := e.table().get(k)
	return v, err
}

// Raise records epoch for k durably before returning; it never lowers an
// epoch.
func (e *Epochs) Raise(k Key, epoch uint64) error {
	return e.table().update(k, func(cur uint64, _ bool) (uint64, bool) { return max(cur, epoch), true })
}

func (e *Epochs) table() *table { return e.t.at(e.Dir, "epochs.json", "replica epochs") }

// Fences is the segments fenced for a rollover whose proposal has not
// been applied yet, kept durably in replica_meta/fences.json: a segment
// leader that restarts between the fence and the rollover must keep
// refusing appends, or it could acknowledge entries past the count the
// rollover seals at.
type Fences struct {
	Dir string
	t   table
}

// Has reports whether k is fenced.
func (f *Fences) Has(k Key) (bool, error) {
	_, ok, err := f.table().get(k)
	return ok, err
}

// Set records (on) or lifts (off) the fence of k durably.
func (f *Fences) Set(k Key, on bool) error {
	return f.table().update(k, func(uint64, bool) (uint64, bool) { return 0, on })
}

func (f *Fences) table() *table { return f.t.at(f.Dir, "fences.json", "rollover fences") }

// table is a map from segment to a number, loaded from its file once and
// rewritten whole at every change. The file is a JSON array of
// {"topic","segment","epoch"} (epoch omitted when 0), the format
// epochs.json has always had.
type table struct {
	mu     sync.Mutex
	path   string
	what   string
	m      map[Key]uint64
	loaded bool
}

type record struct {
	Topic   string `json:"topic"`
	Segment uint64 `json:"segment"`
	Epoch   uint64 `json:"epoch,omitempty"`
}

// at names the table's file (the first call wins).
func (t *table) at(dir, name, what string) *table {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.path == "" {
		t.path, t.what = filepath.Join(dir, name), what
	}
	return t
}

func (t *table) loadLocked() error {
	if t.loaded {
		return nil
	}
	t.m = map[Key]uint64{}
	b, err := os.ReadFile(t.path)
	if errors.Is(err, os.ErrNotExist) {
		t.loaded = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", t.what, err)
	}
	var recs []record
	if err := json.Unmarshal(b, &recs); err != nil {
		return fmt.Errorf("%s %s: %w", t.what, t.path, err)
	}
	for _, r := range recs {
		t.m[Key{Topic: r.Topic, Segment: r.Segment}] = r.Epoch
	}
	t.loaded = true
	return nil
}

func (t *table) get(k Key) (uint64, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.loadLocked(); err != nil {
		return 0, false, err
	}
	v, ok := t.m[k]
	return v, ok, nil
}

// update sets k to what f returns (keep false removes it) and rewrites the
// file when that changed anything.
func (t *table) update(k Key, f func(cur uint64, present bool) (uint64, bool)) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.loadLocked(); err != nil {
		return err
	}
	cur, present := t.m[k]
	v, keep := f(cur, present)
	if keep == present && v == cur {
		return nil
	}
	if keep {
		t.m[k] = v
	} else {
		delete(t.m, k)
	}
	recs := make([]record, 0, len(t.m))
	for key, e := range t.m {
		recs = append(recs, record{Topic: key.Topic, Segment: key.Segment, Epoch: e})
	}
	b, err := json.Marshal(recs)
	if err != nil {
		return fmt.Errorf("%s: %w", t.what, err)
	}
	if err := writeFileSync(t.path, b); err != nil {
		return fmt.Errorf("%s: %w", t.what, err)
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

// Prune removes the epochs of segments gone reports deleted.
func (e *Epochs) Prune(gone func(Key) bool) error { return e.table().prune(gone) }

// Prune removes the fences of segments gone reports deleted.
func (f *Fences) Prune(gone func(Key) bool) error { return f.table().prune(gone) }

// prune removes the keys gone reports and rewrites the file once.
func (t *table) prune(gone func(Key) bool) error {
	t.mu.Lock()
	var drop []Key
	if err := t.loadLocked(); err != nil {
		t.mu.Unlock()
		return err
	}
	for k := range t.m {
		if gone(k) {
			drop = append(drop, k)
		}
	}
	t.mu.Unlock()
	for _, k := range drop {
		if err := t.update(k, func(uint64, bool) (uint64, bool) { return 0, false }); err != nil {
			return err
		}
	}
	return nil
}
