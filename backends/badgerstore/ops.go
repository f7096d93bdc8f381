package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"math"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/walrus-go/walrus/engine"
)

// dropChunk is how many keys one delete transaction removes; far below
// badger's per-transaction limit for any memtable size we accept.
const dropChunk = 1000

// Append implements engine.SegmentStore. The batch and the segment's new
// meta commit in one badger transaction, shared with other appends queued
// at the same moment (of this segment or others). A batch too large for one
// transaction is split (see commitSplit) and still becomes visible at once.
func (s *Store) Append(ctx context.Context, id engine.SegmentID, entries [][]byte) (uint64, error) {
	if err := s.enter(ctx, "append", id, true); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	if err := s.limits.CheckBatch(entries); err != nil {
		return 0, fmt.Errorf("badgerstore: append %s: %w", id, err)
	}
	first, err := s.append(ctx, id, entries, false)
	if errors.Is(err, errTooBig) {
		// Our size estimate was below badger's accounting: redo it split.
		first, err = s.append(ctx, id, entries, true)
	}
	if err != nil {
		return 0, s.fail("append", id, err)
	}
	return first, nil
}

func (s *Store) append(ctx context.Context, id engine.SegmentID, entries [][]byte, forceSplit bool) (uint64, error) {
	prefix := entryKeyPrefix(id)
	keyLen := len(prefix) + 8
	// Decide before locking whether the batch fits one transaction: only
	// then can it be pipelined behind other appends of the segment.
	est := int64(len(prefix)) + metaValueLen + 12
	for _, e := range entries {
		v := int64(len(e))
		if v >= s.opts.ValueThreshold {
			v = 12
		}
		est += int64(keyLen) + v + 12
	}
	split := forceSplit || est >= s.maxTxnBytes*3/4
	st, err := s.lockSegment(id, split)
	if err != nil {
		return 0, err
	}
	if st.next.Sealed {
		st.mu.Unlock()
		return 0, engine.ErrSealed
	}
	first := st.next.Entries
	next := metaValue{Entries: first + uint64(len(entries)), Bytes: st.next.Bytes}
	keys := make([]byte, 0, keyLen*len(entries)) // one allocation for every key
	kvs := make([]kv, 0, len(entries)+1)
	for i, e := range entries {
		start := len(keys)
		keys = appendOffset(append(keys, prefix...), first+uint64(i))
		kvs = append(kvs, kv{key: keys[start:len(keys):len(keys)], value: e})
		next.Bytes += uint64(len(e))
	}
	kvs = append(kvs, kv{key: metaKey(id), value: next.encode()})
	// Last look at ctx: once the commit is queued its outcome must be
	// reported, not masked by a cancellation.
	if err := ctx.Err(); err != nil {
		st.mu.Unlock()
		return 0, err
	}
	if split {
		// Settled by lockSegment and holding mu: nothing else of this
		// segment is in flight, so the chunks cannot be overtaken.
		err := s.commitSplit(id, first, kvs)
		if err == nil {
			st.exists, st.next = true, next
		} else {
			st.loaded = false // orphan chunks are fine; our count is not
		}
		st.mu.Unlock()
		return first, err
	}
	st.inflight.Add(1)
	done := s.submit(id, first, kvs)
	st.exists, st.next = true, next
	st.mu.Unlock()
	err = <-done
	if err != nil {
		// Everything queued behind us fails as stale; the next writer
		// reloads the committed meta once they have all been answered.
		st.failed.Store(true)
	}
	st.inflight.Done()
	return first, err
}

// Read implements engine.SegmentStore. It runs in one badger read
// transaction, so the meta and the entries come from the same snapshot, and
// it never reads past the committed count.
func (s *Store) Read(ctx context.Context, id engine.SegmentID, offset uint64, maxEntries, maxBytes int) ([][]byte, error) {
	if err := s.enter(ctx, "read", id, true); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if err := engine.CheckReadBounds(maxEntries, maxBytes); err != nil {
		return nil, fmt.Errorf("badgerstore: read %s: %w", id, err)
	}
	var out [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		m, err := getMeta(txn, id)
		if err != nil {
			return err
		}
		if offset > m.Entries {
			return fmt.Errorf("offset %d beyond count %d: %w", offset, m.Entries, engine.ErrOutOfRange)
		}
		avail := m.Entries - offset
		out = make([][]byte, 0, min(uint64(maxEntries), avail, 1024))
		if avail == 0 {
			return nil
		}
		if maxEntries == 1 || avail == 1 {
			// A point read: one Get is much cheaper than an iterator.
			item, err := txn.Get(entryKey(id, offset))
			if errors.Is(err, badger.ErrKeyNotFound) {
				return fmt.Errorf("entry %d below count %d is missing: %w", offset, m.Entries, engine.ErrCorrupt)
			}
			if err != nil {
				return err
			}
			v, err := s.copyValue(item, math.MaxInt, nil)
			if err != nil {
				return err
			}
			out = append(out, v)
			return nil
		}
		return s.scan(txn, id, offset, m.Entries, maxEntries, maxBytes, &out)
	})
	if err != nil {
		return nil, s.fail(fmt.Sprintf("read at %d", offset), id, err)
	}
	return out, nil
}

// copyValue returns a copy of the item's value (never nil), or nil when the
// value is longer than budget: the length is checked before anything is
// copied. Small values are carved from *arena, so a read of many small
// entries costs a few allocations instead of one per entry; the caller owns
// every returned slice either way (each is capped to its own length, so an
// append by the caller never runs into its neighbour).
func (s *Store) copyValue(item *badger.Item, budget int, arena *[]byte) ([]byte, error) {
	var v []byte
	err := item.Value(func(b []byte) error {
		if len(b) == 0 && item.ValueSize() > 0 {
			// badger's Item.Value logs a failed value-log read (a checksum
			// mismatch included) and hands back an empty value with a nil
			// error. An entry that is empty is stored inline with size 0,
			// so a non-zero size with no bytes is a read that failed.
			return fmt.Errorf("value of about %d bytes could not be read from the value log (badger logged why): %w", item.ValueSize(), engine.ErrCorrupt)
		}
		if len(b) > s.limits.MaxEntryBytes {
			return fmt.Errorf("entry of %d bytes over the %d-byte limit: %w", len(b), s.limits.MaxEntryBytes, engine.ErrCorrupt)
		}
		if len(b) > budget {
			return nil
		}
		if len(b) == 0 {
			v = []byte{} // non-nil: nil means "over budget"
			return nil
		}
		if arena == nil || len(b) > readArenaBytes/4 {
			v = append(make([]byte, 0, len(b)), b...)
			return nil
		}
		if cap(*arena)-len(*arena) < len(b) {
			*arena = make([]byte, 0, readArenaBytes)
		}
		start := len(*arena)
		*arena = append(*arena, b...)
		v = (*arena)[start:len(*arena):len(*arena)]
		return nil
	})
	return v, err
}

// readArenaBytes is the chunk size small read results are carved from.
const readArenaBytes = 32 << 10

// scan appends entries [offset, count) to out within the bounds, checking
// that keys are dense: a gap below the committed count is corruption.
func (s *Store) scan(txn *badger.Txn, id engine.SegmentID, offset, count uint64, maxEntries, maxBytes int, out *[][]byte) error {
	prefix := entryKeyPrefix(id)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	want, size := offset, 0
	var arena []byte
	for it.Seek(entryKey(id, offset)); want < count && len(*out) < maxEntries; it.Next() {
		if !it.Valid() {
			return fmt.Errorf("entry %d below count %d is missing: %w", want, count, engine.ErrCorrupt)
		}
		item := it.Item()
		got, err := entryOffset(prefix, item.Key())
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("entry %d below count %d is missing (next key is %d): %w", want, count, got, engine.ErrCorrupt)
		}
		budget := math.MaxInt // the first entry is returned whatever its size
		if len(*out) > 0 {
			budget = maxBytes - size
		}
		v, err := s.copyValue(item, budget, &arena)
		if err != nil {
			return err
		}
		if v == nil {
			return nil // the entry would push the total over maxBytes
		}
		*out = append(*out, v)
		size += len(v)
		want++
	}
	return nil
}

// Seal implements engine.SegmentStore. It waits for the segment's queued
// appends, so the sealed count includes every acknowledged append.
func (s *Store) Seal(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	if err := s.enter(ctx, "seal", id, true); err != nil {
		return engine.SegmentInfo{}, err
	}
	defer s.mu.RUnlock()
	st, err := s.lockSegment(id, true)
	if err != nil {
		return engine.SegmentInfo{}, err
	}
	defer st.mu.Unlock()
	if !st.exists {
		return engine.SegmentInfo{}, fmt.Errorf("badgerstore: seal %s: %w", id, engine.ErrNotFound)
	}
	if st.next.Sealed {
		return st.next.info(id), nil
	}
	m := st.next
	m.Sealed = true
	if err := <-s.submit(id, m.Entries, []kv{{key: metaKey(id), value: m.encode()}}); err != nil {
		st.loaded = false
		return engine.SegmentInfo{}, s.fail("seal", id, err)
	}
	st.next = m
	s.logger.Debug("segment sealed", "topic", id.Topic, "segment", id.Segment, "entries", m.Entries)
	return m.info(id), nil
}

// Stat implements engine.SegmentStore.
func (s *Store) Stat(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	if err := s.enter(ctx, "stat", id, true); err != nil {
		return engine.SegmentInfo{}, err
	}
	defer s.mu.RUnlock()
	var m metaValue
	err := s.db.View(func(txn *badger.Txn) (err error) {
		m, err = getMeta(txn, id)
		return err
	})
	if err != nil {
		return engine.SegmentInfo{}, s.fail("stat", id, err)
	}
	return m.info(id), nil
}

// List implements engine.SegmentStore. Meta keys sort by (topic, segment),
// so the iteration order is the order List promises.
func (s *Store) List(ctx context.Context, topic string) ([]engine.SegmentInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("badgerstore: list %q: %w", topic, err)
	}
	if topic != "" {
		if err := engine.ValidateTopic(topic); err != nil {
			return nil, fmt.Errorf("badgerstore: list: %w", err)
		}
	}
	if err := s.enter(ctx, "list", engine.SegmentID{Topic: topic}, false); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	out := []engine.SegmentInfo{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: topicPrefix(kindMeta, topic), PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			_, id, err := parseSegmentKey(item.Key())
			if err != nil {
				return err
			}
			var m metaValue
			if err := item.Value(func(v []byte) (err error) {
				m, err = decodeMeta(v)
				return err
			}); err != nil {
				return err
			}
			out = append(out, m.info(id))
		}
		return nil
	})
	if err != nil {
		return nil, s.fail(fmt.Sprintf("list %q", topic), engine.SegmentID{}, err)
	}
	return out, nil
}

// Delete implements engine.SegmentStore. The meta goes first, together with
// a "deleting" marker, so the segment disappears atomically; the entry keys
// are then removed in chunks and the marker last. A crash in between
// leaves the marker, and the delete is finished at the next Open.
func (s *Store) Delete(ctx context.Context, id engine.SegmentID) error {
	if err := s.enter(ctx, "delete", id, true); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	st, err := s.lockSegment(id, true)
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	if !st.exists {
		return fmt.Errorf("badgerstore: delete %s: %w", id, engine.ErrNotFound)
	}
	err = s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Delete(metaKey(id)); err != nil {
			return err
		}
		return txn.Set(deletingKey(id), nil)
	})
	if err != nil {
		return s.fail("delete", id, err)
	}
	// The segment is gone for readers now. The entries go while st.mu is
	// still held, so no append can re-create the segment under our feet.
	st.exists, st.next = false, metaValue{}
	if err := s.dropEntries(id); err != nil {
		// Reloading finds the marker and retries before any reuse of id.
		st.loaded = false
		return s.fail("delete entries of", id, err)
	}
	st.dropped = true
	s.segsMu.Lock()
	delete(s.segs, id)
	s.segsMu.Unlock()
	s.logger.Debug("segment deleted", "topic", id.Topic, "segment", id.Segment)
	return nil
}

// dropEntries removes every entry key of id, then its deleting marker.
func (s *Store) dropEntries(id engine.SegmentID) error {
	prefix := entryKeyPrefix(id)
	for {
		var keys [][]byte
		err := s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
			defer it.Close()
			for it.Rewind(); it.Valid() && len(keys) < dropChunk; it.Next() {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			break
		}
		err = s.db.Update(func(txn *badger.Txn) error {
			for _, k := range keys {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return s.db.Update(func(txn *badger.Txn) error { return txn.Delete(deletingKey(id)) })
}

// Sync implements engine.SegmentStore: it fsyncs badger's value log and
// active memtable WAL.
func (s *Store) Sync(ctx context.Context) error {
	if err := s.enter(ctx, "sync", engine.SegmentID{}, false); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := s.db.Sync(); err != nil {
		return s.fail("sync", engine.SegmentID{}, err)
	}
	return nil
}
