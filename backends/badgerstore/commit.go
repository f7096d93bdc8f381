package badgerstore

import (
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/walrus-go/walrus/engine"
)

// kv is one key/value to set. Badger keeps both slices until the commit
// returns, after which it holds its own copies (memtable arena, value log),
// so callers may reuse their buffers once Append returns.
type kv struct {
	key, value []byte
}

type commitReq struct {
	id engine.SegmentID
	// prev is the committed entry count the request was built on. The
	// committer refuses the request (errStale) if the segment's meta, as of
	// the requests before it, says otherwise or is sealed: a request queued
	// behind a failed one must not commit entries past a hole.
	prev uint64
	kvs  []kv
	est  int64      // estimateTxnBytes(kvs)
	done chan error // capacity 1: the committer never blocks on a reply
}

var (
	// errTooBig tells a requester its kvs alone exceed one badger
	// transaction; it must take the split path.
	errTooBig = errors.New("batch exceeds one badger transaction")
	// errStale: an append queued earlier for the same segment failed (or
	// the segment changed), so this one was built on a count that is not
	// the committed one; nothing of it was written.
	errStale = errors.New("an earlier append to the segment failed")
)

// submit queues kvs for the group committer. The caller holds s.mu shared,
// so the committer is running; it reads the outcome from the returned
// channel. Requests of one segment are queued under its segState.mu, so the
// queue order is the offset order.
func (s *Store) submit(id engine.SegmentID, prev uint64, kvs []kv) chan error {
	req := &commitReq{id: id, prev: prev, kvs: kvs, est: s.estimateTxnBytes(kvs), done: make(chan error, 1)}
	s.commitCh <- req
	return req.done
}

// runCommitter is the group committer: it takes every request waiting in
// commitCh and commits them in as few badger transactions as fit, so that
// concurrent appends share one commit (and, in durability always, one
// fsync). Requests that arrive while a commit is in progress form the next
// group. Close stops it only after every caller has left, so nothing is
// pending then.
func (s *Store) runCommitter() {
	defer s.wg.Done()
	group := make([]*commitReq, 0, maxCommitGroup)
	for {
		select {
		case <-s.stop:
			return
		case r := <-s.commitCh:
			group = append(group[:0], r)
		}
	gather:
		for len(group) < maxCommitGroup {
			select {
			case r := <-s.commitCh:
				group = append(group, r)
			default:
				break gather
			}
		}
		for rest := group; len(rest) > 0; {
			rest = rest[s.commitSome(rest):]
		}
		clear(group) // drop references to the callers' buffers
	}
}

// commitSome commits, in one transaction, a prefix of group made of whole
// requests, answers every request of that prefix, and returns its length
// (at least 1). A request is never split: each stays atomic.
func (s *Store) commitSome(group []*commitReq) int {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	var (
		included []*commitReq
		est      int64
		n        int
	)
	for n < len(group) {
		r := group[n]
		if len(included) > 0 && est+r.est > s.maxTxnBytes*3/4 {
			break // leave room: badger's accounting differs a little from ours
		}
		err := checkPrev(txn, r)
		if err == nil && s.commitFault != nil {
			err = s.commitFault(r)
		}
		if err != nil {
			r.done <- err
			n++
			continue
		}
		if err := setAll(txn, r.kvs); err != nil {
			// r is partly in txn: this transaction cannot be committed.
			txn.Discard()
			if len(included) == 0 {
				if errors.Is(err, badger.ErrTxnTooBig) {
					err = errTooBig
				}
				r.done <- err
				return n + 1
			}
			if errors.Is(err, badger.ErrTxnTooBig) {
				// Commit what fitted; r goes first in the next round.
				for rest := included; len(rest) > 0; {
					rest = rest[s.commitSome(rest):]
				}
				return n
			}
			for _, q := range included {
				q.done <- err
			}
			r.done <- err
			return n + 1
		}
		included = append(included, r)
		est += r.est
		n++
	}
	if len(included) > 0 {
		err := txn.Commit()
		for _, r := range included {
			r.done <- err
		}
	}
	return n
}

// checkPrev compares r with the segment's meta as txn sees it (committed
// state plus the requests already in txn).
func checkPrev(txn *badger.Txn, r *commitReq) error {
	m, err := getMeta(txn, r.id)
	if errors.Is(err, engine.ErrNotFound) {
		m, err = metaValue{}, nil
	}
	if err != nil {
		return err
	}
	if m.Entries != r.prev || m.Sealed {
		return fmt.Errorf("segment has %d entries (sealed %v), request built on %d: %w", m.Entries, m.Sealed, r.prev, errStale)
	}
	return nil
}

func setAll(txn *badger.Txn, kvs []kv) error {
	for _, p := range kvs {
		if err := txn.Set(p.key, p.value); err != nil {
			return err
		}
	}
	return nil
}

// estimateTxnBytes approximates badger's own accounting of a transaction
// (key, value or value pointer, and per-entry overhead).
func (s *Store) estimateTxnBytes(kvs []kv) int64 {
	var n int64
	for _, p := range kvs {
		v := int64(len(p.value))
		if v >= s.opts.ValueThreshold {
			v = 12 // a value pointer
		}
		n += int64(len(p.key)) + v + 12
	}
	return n
}

// commitSplit writes a batch too large for one transaction: the entries
// (every kv but the last) in as many transactions as needed, then the meta
// (the last kv) through the committer. Until the meta commits, the entries
// lie beyond the committed count, invisible to readers; if the process dies
// first they stay invisible and the next append overwrites them. The caller
// holds the segment settled (nothing of it in flight), so prev is the
// committed count and no queued append can commit past the chunks.
func (s *Store) commitSplit(id engine.SegmentID, prev uint64, kvs []kv) error {
	entries, meta := kvs[:len(kvs)-1], kvs[len(kvs)-1:]
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	chunk := 0
	flush := func() error {
		if err := txn.Commit(); err != nil {
			return err
		}
		chunk++
		if s.afterSplitChunk != nil {
			if err := s.afterSplitChunk(chunk); err != nil {
				return err
			}
		}
		txn = s.db.NewTransaction(true)
		return nil
	}
	for _, p := range entries {
		err := txn.Set(p.key, p.value)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err := flush(); err != nil {
				return err
			}
			err = txn.Set(p.key, p.value)
		}
		if err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return <-s.submit(id, prev, meta)
}
