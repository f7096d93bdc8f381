package badgerstore

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// Options configure a Store. Sizes are in bytes.
type Options struct {
	// Store carries the common settings: durability, sync interval, limits.
	Store engine.Options
	// Logger receives the store's and badger's logs; nil discards them.
	Logger *slog.Logger

	// MemTableSize is badger's memtable size (default 64 MiB). One badger
	// transaction holds at most 15% of it; bigger batches are split (see
	// README.md) and stay atomic.
	MemTableSize int64
	// NumMemtables is how many memtables badger keeps in memory (default 5).
	NumMemtables int
	// ValueThreshold: entries at least this long go to the value log, the
	// rest live in the LSM tree (default 1 MiB, at most 15% of MemTableSize).
	ValueThreshold int64
	// ValueLogFileSize is the size of one value-log file (default 1 GiB;
	// badger accepts 1 MiB to 2 GiB).
	ValueLogFileSize int64
	// BlockCacheSize is badger's block cache (default 256 MiB).
	BlockCacheSize int64
	// IndexCacheSize is badger's index cache; 0 keeps all indexes in memory
	// (default 0).
	IndexCacheSize int64
	// NumCompactors is the number of badger compaction goroutines (default 4,
	// at least 2).
	NumCompactors int
	// ValueLogGCInterval is how often the store runs value-log GC (default
	// 5 minutes; zero or negative disables it).
	ValueLogGCInterval time.Duration
	// ValueLogGCDiscardRatio is the share of garbage that makes a value-log
	// file worth rewriting (default 0.5, in (0, 1)).
	ValueLogGCDiscardRatio float64
}

// DefaultOptions returns a fresh Options value with the defaults.
func DefaultOptions() Options {
	return Options{
		Store:                  engine.DefaultOptions(),
		MemTableSize:           64 << 20,
		NumMemtables:           5,
		ValueThreshold:         1 << 20,
		ValueLogFileSize:       1<<30 - 1,
		BlockCacheSize:         256 << 20,
		NumCompactors:          4,
		ValueLogGCInterval:     5 * time.Minute,
		ValueLogGCDiscardRatio: 0.5,
	}
}

// SmallOptions returns options for tests and tiny deployments: a few MiB of
// memory instead of hundreds.
func SmallOptions() Options {
	o := DefaultOptions()
	o.MemTableSize = 1 << 20
	o.NumMemtables = 2
	o.ValueThreshold = 1 << 10
	o.ValueLogFileSize = 4 << 20
	o.BlockCacheSize = 1 << 20
	o.NumCompactors = 2
	return o
}

// Validate reports every field outside its allowed range.
func (o Options) Validate() error {
	var errs []error
	if err := o.Store.Validate(); err != nil {
		errs = append(errs, err)
	}
	bad := func(name string, v any, want string) {
		errs = append(errs, fmt.Errorf("%s = %v: want %s: %w", name, v, want, engine.ErrInvalidArgument))
	}
	if o.MemTableSize < 1<<20 || o.MemTableSize > 1<<30 {
		bad("MemTableSize", o.MemTableSize, "1 MiB..1 GiB")
	}
	if o.NumMemtables < 1 || o.NumMemtables > 64 {
		bad("NumMemtables", o.NumMemtables, "1..64")
	}
	if o.ValueThreshold < 1 || o.ValueThreshold > 1<<20 || o.ValueThreshold > o.MemTableSize*15/100 {
		bad("ValueThreshold", o.ValueThreshold, "1..min(1 MiB, 15% of MemTableSize)")
	}
	if o.ValueLogFileSize < 1<<20 || o.ValueLogFileSize >= 2<<30 {
		bad("ValueLogFileSize", o.ValueLogFileSize, "1 MiB..2 GiB")
	}
	if o.BlockCacheSize < 0 {
		bad("BlockCacheSize", o.BlockCacheSize, ">= 0")
	}
	if o.IndexCacheSize < 0 {
		bad("IndexCacheSize", o.IndexCacheSize, ">= 0")
	}
	if o.NumCompactors < 2 || o.NumCompactors > 64 {
		bad("NumCompactors", o.NumCompactors, "2..64")
	}
	if o.ValueLogGCDiscardRatio <= 0 || o.ValueLogGCDiscardRatio >= 1 {
		bad("ValueLogGCDiscardRatio", o.ValueLogGCDiscardRatio, "in (0, 1)")
	}
	return errors.Join(errs...)
}
