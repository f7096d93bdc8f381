package badgerstore

import (
	"errors"

	badger "github.com/dgraph-io/badger/v4"
)

// kv is one key/value to set. Badger keeps both slices until the commit
// returns, after which it holds its own copies (memtable arena, value log),
// so callers may reuse their buffers once Append returns.
type kv struct {
	key, value []byte
}

type commitReq struct {
	kvs  []kv
	done chan error // capacity 1: the committer never blocks on a reply
}

// errTooBig tells a requester its kvs alone exceed one badger transaction;
// it must take the split path.
var errTooBig = errors.New("batch exceeds one badger transaction")

// commit commits kvs atomically through the group committer and returns once
// the commit is done (fsynced in durability always). The caller holds s.mu
// shared, so the committer is running.
func (s *Store) commit(kvs []kv) error {
	req := &commitReq{kvs: kvs, done: make(chan error, 1)}
	s.commitCh <- req
	return <-req.done
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
		s.commitGroup(group)
		clear(group) // drop references to the callers' buffers
	}
}

// commitGroup answers every request of group.
func (s *Store) commitGroup(group []*commitReq) {
	for len(group) > 0 {
		n, err := s.commitPrefix(group)
		if n == 0 {
			group[0].done <- errTooBig
			group = group[1:]
			continue
		}
		for _, r := range group[:n] {
			r.done <- err
		}
		group = group[n:]
	}
}

// commitPrefix commits, in one transaction, the longest prefix of group
// whose requests fit whole, and returns its length: 0 when the first
// request alone is too big. A request is never split: each stays atomic.
func (s *Store) commitPrefix(group []*commitReq) (int, error) {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	for i, r := range group {
		for _, p := range r.kvs {
			err := txn.Set(p.key, p.value)
			if errors.Is(err, badger.ErrTxnTooBig) {
				if i == 0 {
					return 0, nil
				}
				txn.Discard()
				// group[:i] fitted a moment ago, so this cannot recurse again.
				return s.commitPrefix(group[:i])
			}
			if err != nil {
				return len(group), err
			}
		}
	}
	return len(group), txn.Commit()
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
// first they stay invisible and the next append overwrites them.
func (s *Store) commitSplit(kvs []kv) error {
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
	return s.commit(meta)
}
