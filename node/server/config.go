package server

import (
	"errors"
	"fmt"
	"time"

	"github.com/walrus-go/walrus/node/auth"
	"github.com/walrus-go/walrus/node/protocol"
)

// Limits on Config values; anything outside is a configuration mistake.
const (
	MaxBatchLimit       = 65536
	MaxFrameBytesMax    = 256 << 20
	bufferBytes         = 64 << 10
	defaultMaxBatch     = 256
	defaultBatchBytes   = 4 << 20
	defaultMaxConns     = 1024
	defaultIdle         = 5 * time.Minute
	defaultWriteLimit   = 30 * time.Second
	defaultAuthFailures = 3
)

// Config tunes the listener. Zero fields take their defaults (see
// DefaultConfig).
type Config struct {
	// MaxFrameBytes is the largest request frame accepted (length prefix
	// excluded). Default protocol.DefaultMaxFrameBytes (1 MiB + 512).
	MaxFrameBytes int
	// MaxBatch is the most requests passed to one Handle call. Default 256.
	MaxBatch int
	// MaxBatchBytes stops gathering a batch once its frames add up to this
	// many bytes, so one connection pipelining large PUTs holds at most
	// about this much (plus one frame) at a time. Default 4 MiB.
	MaxBatchBytes int
	// MaxConns is the most open client connections; a connection beyond it
	// gets "ERR too many connections" and is closed. Default 1024 (each
	// connection holds 128 KiB of buffers).
	MaxConns int
	// IdleTimeout closes a connection that sends nothing for this long.
	// Default 5m; negative disables it.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one batch of replies, so a client that
	// stops reading cannot pin a goroutine forever. Default 30s; negative
	// disables it.
	WriteTimeout time.Duration
	// Auth, when it lists users, makes every connection authenticate
	// (AUTH <user> <password>, or a verified TLS client certificate)
	// before anything else. nil or empty: no authentication.
	Auth *auth.Store
	// MaxAuthFailures closes a connection after this many failed AUTHs.
	// Default 3.
	MaxAuthFailures int
	// OnAuthFailure, if set, is called with the reason of every failed or
	// missing authentication (auth.Reason*), e.g. to count it.
	OnAuthFailure func(reason string)
}

// DefaultConfig returns a fresh Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		MaxFrameBytes: protocol.DefaultMaxFrameBytes,
		MaxBatch:      defaultMaxBatch,
		MaxBatchBytes: defaultBatchBytes,
		MaxConns:      defaultMaxConns,
		IdleTimeout:   defaultIdle,
		WriteTimeout:  defaultWriteLimit,
	}
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = d.MaxFrameBytes
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = d.MaxBatch
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = d.MaxBatchBytes
	}
	if c.MaxConns == 0 {
		c.MaxConns = d.MaxConns
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.MaxAuthFailures <= 0 {
		c.MaxAuthFailures = defaultAuthFailures
	}
	return c
}

// Validate reports every field out of range (zero fields are fine: they
// mean the default).
func (c Config) Validate() error {
	var errs []error
	if c.MaxFrameBytes < 0 || c.MaxFrameBytes > MaxFrameBytesMax {
		errs = append(errs, fmt.Errorf("max_frame_bytes %d: must be 1..%d (0 = default)", c.MaxFrameBytes, MaxFrameBytesMax))
	}
	if c.MaxBatch < 0 || c.MaxBatch > MaxBatchLimit {
		errs = append(errs, fmt.Errorf("max_batch %d: must be 1..%d (0 = default)", c.MaxBatch, MaxBatchLimit))
	}
	if c.MaxBatchBytes < 0 {
		errs = append(errs, fmt.Errorf("max_batch_bytes %d: must be >= 1 (0 = default)", c.MaxBatchBytes))
	}
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("max_conns %d: must be >= 1 (0 = default)", c.MaxConns))
	}
	return errors.Join(errs...)
}
