package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/walrus-go/walrus/engine"
)

// FileName is the database file inside the store's directory.
const FileName = "walrus.bolt"

var (
	bucketMeta     = []byte("meta")
	bucketSegments = []byte("segments")
	crcTable       = crc32.MakeTable(crc32.Castagnoli)
)

const (
	metaLen   = 17 // entries u64, bytes u64, sealed u8
	crcLen    = 4
	offsetLen = 8
)

// Options configure a Store.
type Options struct {
	// Store holds the durability mode, sync interval and limits
	// (default engine.DefaultOptions()).
	Store engine.Options
	// OpenTimeout bounds the wait for the database file lock held by
	// another process (default 10 s).
	OpenTimeout time.Duration
	// Logger receives background errors; nil discards them.
	Logger *slog.Logger
}

// DefaultOptions returns a fresh Options value with the defaults.
func DefaultOptions() Options {
	return Options{Store: engine.DefaultOptions(), OpenTimeout: 10 * time.Second}
}

// Store is a SegmentStore in one bbolt file.
type Store struct {
	db     *bolt.DB
	opts   Options
	logger *slog.Logger

	mu     sync.RWMutex // guards closed; held shared by every operation
	closed bool

	stopSync chan struct{} // closed by Close; nil unless DurabilityInterval
	wg       sync.WaitGroup
}

var _ engine.SegmentStore = (*Store)(nil)

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if err := opts.Store.Validate(); err != nil {
		return nil, fmt.Errorf("boltstore: options: %w", err)
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = 10 * time.Second
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("boltstore: create %s: %w", dir, err)
	}
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{
		Timeout: opts.OpenTimeout,
		// Only DurabilityAlways pays an fsync per commit.
		NoSync:       opts.Store.Durability != engine.DurabilityAlways,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", dir, err)
	}
	// Group commit: concurrent appends share one transaction and one fsync,
	// waiting at most 1 ms for company.
	db.MaxBatchDelay = time.Millisecond
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketSegments} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: init %s: %w", dir, err)
	}
	s := &Store{db: db, opts: opts, logger: logger.With("component", "boltstore")}
	if opts.Store.Durability == engine.DurabilityInterval {
		s.stopSync = make(chan struct{})
		s.wg.Add(1)
		go s.syncLoop()
	}
	return s, nil
}

// syncLoop fsyncs every SyncInterval (DurabilityInterval), so a power loss
// loses at most one interval of acknowledged appends.
func (s *Store) syncLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(s.opts.Store.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stopSync:
			return
		case <-tick.C:
			if err := s.db.Sync(); err != nil {
				s.logger.Error("periodic fsync failed", "err", err)
			}
		}
	}
}

// segKey is topic, NUL, big-endian segment: byte order sorts by topic then
// segment, and a topic's keys share the prefix topic+NUL (topics contain no
// NUL).
func segKey(id engine.SegmentID) []byte {
	k := make([]byte, 0, len(id.Topic)+1+8)
	k = append(k, id.Topic...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, id.Segment)
}

func parseSegKey(k []byte) (engine.SegmentID, bool) {
	if len(k) < 10 || k[len(k)-9] != 0 {
		return engine.SegmentID{}, false
	}
	return engine.SegmentID{Topic: string(k[:len(k)-9]), Segment: binary.BigEndian.Uint64(k[len(k)-8:])}, true
}

func offsetKey(off uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, offsetLen), off)
}

type meta struct {
	entries, bytes uint64
	sealed         bool
}

func decodeMeta(b []byte) (meta, error) {
	if len(b) != metaLen {
		return meta{}, fmt.Errorf("segment meta is %d bytes, want %d: %w", len(b), metaLen, engine.ErrCorrupt)
	}
	return meta{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), b[16] == 1}, nil
}

func (m meta) encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, metaLen), m.entries)
	b = binary.BigEndian.AppendUint64(b, m.bytes)
	if m.sealed {
		return append(b, 1)
	}
	return append(b, 0)
}

func (m meta) info(id engine.SegmentID) engine.SegmentInfo {
	return engine.SegmentInfo{ID: id, Entries: m.entries, Bytes: m.bytes, Sealed: m.sealed}
}

// getMeta returns the segment's meta, or ErrNotFound.
func getMeta(tx *bolt.Tx, id engine.SegmentID) (meta, error) {
	raw := tx.Bucket(bucketMeta).Get(segKey(id))
	if raw == nil {
		return meta{}, engine.ErrNotFound
	}
	return decodeMeta(raw)
}

// begin checks what every operation checks first: open store, live ctx,
// valid topic. It returns with s.mu held shared; call the returned func.
func (s *Store) begin(ctx context.Context, op string, id engine.SegmentID) (func(), error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, fmt.Errorf("boltstore: %s %s: %w", op, id, engine.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		s.mu.RUnlock()
		return nil, fmt.Errorf("boltstore: %s %s: %w", op, id, err)
	}
	if err := id.Validate(); err != nil {
		s.mu.RUnlock()
		return nil, fmt.Errorf("boltstore: %s: %w", op, err)
	}
	return s.mu.RUnlock, nil
}

// Append writes the batch in one transaction.
func (s *Store) Append(ctx context.Context, id engine.SegmentID, entries [][]byte) (uint64, error) {
	done, err := s.begin(ctx, "append", id)
	if err != nil {
		return 0, err
	}
	defer done()
	if err := s.opts.Store.Limits.CheckBatch(entries); err != nil {
		return 0, fmt.Errorf("boltstore: append %s: %w", id, err)
	}
	var first uint64
	apply := func(tx *bolt.Tx) error {
		key := segKey(id)
		m, err := getMeta(tx, id)
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return err
		}
		if m.sealed {
			return engine.ErrSealed
		}
		seg, err := tx.Bucket(bucketSegments).CreateBucketIfNotExists(key)
		if err != nil {
			return err
		}
		seg.FillPercent = 1.0 // offsets only grow: pack pages full
		first = m.entries
		for i, e := range entries {
			v := make([]byte, crcLen+len(e))
			binary.BigEndian.PutUint32(v, crc32.Checksum(e, crcTable))
			copy(v[crcLen:], e)
			if err := seg.Put(offsetKey(first+uint64(i)), v); err != nil {
				return err
			}
			m.bytes += uint64(len(e))
		}
		m.entries += uint64(len(entries))
		return tx.Bucket(bucketMeta).Put(key, m.encode())
	}
	if s.opts.Store.Durability == engine.DurabilityAlways {
		// Batch may run apply more than once (it retries survivors of a
		// failed group alone); apply derives everything from the tx, so a
		// retry is harmless.
		err = s.db.Batch(apply)
	} else {
		err = s.db.Update(apply)
	}
	if err != nil {
		return 0, fmt.Errorf("boltstore: append %s: %w", id, err)
	}
	return first, nil
}

// Read returns entries from offset on within the bounds.
func (s *Store) Read(ctx context.Context, id engine.SegmentID, offset uint64, maxEntries int, maxBytes int) ([][]byte, error) {
	done, err := s.begin(ctx, "read", id)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := engine.CheckReadBounds(maxEntries, maxBytes); err != nil {
		return nil, fmt.Errorf("boltstore: read %s: %w", id, err)
	}
	var out [][]byte
	err = s.db.View(func(tx *bolt.Tx) error {
		m, err := getMeta(tx, id)
		if err != nil {
			return err
		}
		if offset > m.entries {
			return fmt.Errorf("offset %d > entries %d: %w", offset, m.entries, engine.ErrOutOfRange)
		}
		out = [][]byte{}
		if offset == m.entries {
			return nil
		}
		seg := tx.Bucket(bucketSegments).Bucket(segKey(id))
		if seg == nil {
			return fmt.Errorf("segment bucket missing: %w", engine.ErrCorrupt)
		}
		c := seg.Cursor()
		total := 0
		want := offset
		for k, v := c.Seek(offsetKey(offset)); want < m.entries && len(out) < maxEntries; k, v = c.Next() {
			if k == nil || !bytes.Equal(k, offsetKey(want)) {
				return fmt.Errorf("entry %d missing: %w", want, engine.ErrCorrupt)
			}
			if len(v) < crcLen {
				return fmt.Errorf("entry %d is %d bytes, shorter than its CRC: %w", want, len(v), engine.ErrCorrupt)
			}
			payload := v[crcLen:]
			if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(v) {
				return fmt.Errorf("entry %d fails its CRC: %w", want, engine.ErrCorrupt)
			}
			if len(out) > 0 && total+len(payload) > maxBytes {
				break
			}
			total += len(payload)
			// bbolt's value memory is only valid inside the transaction.
			out = append(out, bytes.Clone(payload))
			if out[len(out)-1] == nil {
				out[len(out)-1] = []byte{}
			}
			want++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: read %s@%d: %w", id, offset, err)
	}
	return out, nil
}

// Seal marks the segment sealed; sealing twice returns the same info.
func (s *Store) Seal(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	done, err := s.begin(ctx, "seal", id)
	if err != nil {
		return engine.SegmentInfo{}, err
	}
	defer done()
	var m meta
	err = s.db.Update(func(tx *bolt.Tx) error {
		m, err = getMeta(tx, id)
		if err != nil || m.sealed {
			return err
		}
		m.sealed = true
		return tx.Bucket(bucketMeta).Put(segKey(id), m.encode())
	})
	if err != nil {
		return engine.SegmentInfo{}, fmt.Errorf("boltstore: seal %s: %w", id, err)
	}
	// A seal is a state change the node builds on (rollover): make it
	// durable now whatever the mode.
	if err := s.db.Sync(); err != nil {
		return engine.SegmentInfo{}, fmt.Errorf("boltstore: seal %s: fsync: %w", id, err)
	}
	return m.info(id), nil
}

// Stat reports one segment.
func (s *Store) Stat(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	done, err := s.begin(ctx, "stat", id)
	if err != nil {
		return engine.SegmentInfo{}, err
	}
	defer done()
	var m meta
	err = s.db.View(func(tx *bolt.Tx) error {
		m, err = getMeta(tx, id)
		return err
	})
	if err != nil {
		return engine.SegmentInfo{}, fmt.Errorf("boltstore: stat %s: %w", id, err)
	}
	return m.info(id), nil
}

// List reports the segments of topic (every topic when "") in order.
func (s *Store) List(ctx context.Context, topic string) ([]engine.SegmentInfo, error) {
	id := engine.SegmentID{Topic: topic}
	if topic == "" {
		id.Topic = "all" // a valid placeholder: "" means every topic
	}
	done, err := s.begin(ctx, "list", id)
	if err != nil {
		return nil, err
	}
	defer done()
	var prefix []byte
	if topic != "" {
		prefix = append([]byte(topic), 0)
	}
	out := []engine.SegmentInfo{}
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMeta).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			sid, ok := parseSegKey(k)
			if !ok {
				return fmt.Errorf("bad segment key %q: %w", k, engine.ErrCorrupt)
			}
			m, err := decodeMeta(v)
			if err != nil {
				return err
			}
			out = append(out, m.info(sid))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: list %q: %w", topic, err)
	}
	return out, nil
}

// Delete removes a segment and its entries.
func (s *Store) Delete(ctx context.Context, id engine.SegmentID) error {
	done, err := s.begin(ctx, "delete", id)
	if err != nil {
		return err
	}
	defer done()
	err = s.db.Update(func(tx *bolt.Tx) error {
		if _, err := getMeta(tx, id); err != nil {
			return err
		}
		key := segKey(id)
		if err := tx.Bucket(bucketMeta).Delete(key); err != nil {
			return err
		}
		if err := tx.Bucket(bucketSegments).DeleteBucket(key); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("boltstore: delete %s: %w", id, err)
	}
	return nil
}

// Sync fsyncs the database file.
func (s *Store) Sync(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("boltstore: sync: %w", engine.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: sync: %w", err)
	}
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("boltstore: sync: %w", err)
	}
	return nil
}

// Close fsyncs and closes the database. Idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.stopSync != nil {
		close(s.stopSync)
		s.wg.Wait()
	}
	syncErr := s.db.Sync()
	if err := errors.Join(syncErr, s.db.Close()); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return nil
}

// abandon releases the database like a killed process would (no final
// fsync); for crash tests. bbolt has nothing unwritten after a Commit.
func (s *Store) abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.stopSync != nil {
		close(s.stopSync)
		s.wg.Wait()
	}
	_ = s.db.Close()
}
