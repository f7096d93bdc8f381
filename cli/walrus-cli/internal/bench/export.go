package bench

import "time"

// The Kafka runs (package kbench) reuse the report, the measurement and
// the verification of the Walrus-protocol runs through these, so numbers
// from both protocols come from one tool and mean the same.

// Verifier checks consumed payloads (see verifier).
type Verifier struct{ v *verifier }

// NewVerifier verifies run (0 = the first run seen).
func NewVerifier(run uint32) *Verifier { return &Verifier{v: newVerifier(run)} }

// Add checks one payload; safe for concurrent use.
func (v *Verifier) Add(p []byte) { v.v.add(p) }

// Done is closed once every message of the run was verified.
func (v *Verifier) Done() <-chan struct{} { return v.v.done }

// Result is the run verified (cfg.Run when none was read) and what was
// found; empty counts polls that returned nothing.
func (v *Verifier) Result(cfg *Config, empty uint64) (uint32, *Verify) {
	run, expected := v.v.run.Load(), v.v.total
	if run == 0 {
		run, expected = cfg.Run, cfg.Messages
	}
	verified := v.v.verified.Load()
	return run, &Verify{
		Expected: expected, Verified: verified, Missing: expected - min(verified, expected),
		Duplicates: v.v.dups.Load(), Corrupt: v.v.corrupt.Load(), Foreign: v.v.foreign.Load(), Empty: empty,
	}
}

// Validate checks c for a produce or consume run.
func (c *Config) Validate(produce bool) error { return c.validate(produce) }

// RunClients is runClients for other transports.
func RunClients(cfg *Config, done func() uint64, client func(c int, h *Histogram) error) (elapsed, cpu time.Duration, h *Histogram, err error) {
	return runClients(cfg, done, client)
}

// Finish fills the rates and latencies.
func (r *Report) Finish(h *Histogram, elapsed, cpu time.Duration) { r.finish(h, elapsed, cpu) }
