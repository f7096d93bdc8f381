package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// exitPollInterval is how often the supervisor checks the process is alive
// (go-plugin exposes exit only as a flag). A call that finds the plugin
// unreachable wakes the supervisor at once.
const exitPollInterval = 50 * time.Millisecond

// Store is an engine.SegmentStore served by a plugin process it owns.
type Store struct {
	cfg    Config
	logger *slog.Logger

	// mu guards inst and closed. Calls hold it shared for their duration,
	// so Close and a restart's swap wait for in-flight calls (which fail
	// fast once the process is gone).
	mu     sync.RWMutex
	inst   *instance // nil while the plugin is down
	closed bool

	restarts atomic.Uint64
	kick     chan struct{} // capacity 1: a call saw the plugin unreachable
	closing  chan struct{} // closed by Close: stop supervising
	// closingCtx is cancelled with closing, so a liveness probe in flight
	// does not hold Close up.
	closingCtx    context.Context
	cancelClosing context.CancelFunc
	wg            sync.WaitGroup
}

var _ engine.SegmentStore = (*Store)(nil)

// Open launches the plugin and returns a store that owns it. It fails if the
// plugin cannot be started (missing file, SHA-256 mismatch, protocol version
// mismatch, handshake timeout); after a successful Open, crashes are
// handled by restarting. The result is a *Store.
func Open(ctx context.Context, cfg Config) (engine.SegmentStore, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger.With("component", "pluginhost", "plugin", cfg.Name)
	inst, err := launch(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	logger.Info("plugin started", "path", cfg.Path, "pid", inst.pid)
	s := &Store{
		cfg:     cfg,
		logger:  logger,
		inst:    inst,
		kick:    make(chan struct{}, 1),
		closing: make(chan struct{}),
	}
	s.closingCtx, s.cancelClosing = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.supervise(inst)
	return s, nil
}

// Restarts reports how many times a crashed plugin was relaunched
// successfully.
func (s *Store) Restarts() uint64 { return s.restarts.Load() }

// PID returns the plugin's process id, or 0 while it is down.
func (s *Store) PID() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.inst == nil {
		return 0
	}
	return s.inst.pid
}

// SharedMemory reports whether appends currently travel through the
// shared-memory ring (Linux, a plugin built with this SDK, after the first
// append); false means the data channel socket or gRPC carries them.
func (s *Store) SharedMemory() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.inst != nil && s.inst.store.SharedMemory()
}

// call runs fn against the live plugin, failing fast while it is down.
func (s *Store) call(what string, fn func(engine.SegmentStore) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("plugin %s: %s: %w", s.cfg.Name, what, engine.ErrClosed)
	}
	if s.inst == nil {
		return fmt.Errorf("plugin %s: %s: %w (restarting)", s.cfg.Name, what, engine.ErrUnavailable)
	}
	err := fn(s.inst.store)
	if errors.Is(err, engine.ErrUnavailable) {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return err
}

// Append appends through the plugin.
func (s *Store) Append(ctx context.Context, id engine.SegmentID, entries [][]byte) (first uint64, err error) {
	err = s.call("append", func(st engine.SegmentStore) error {
		first, err = st.Append(ctx, id, entries)
		return err
	})
	return first, err
}

// Read reads through the plugin.
func (s *Store) Read(ctx context.Context, id engine.SegmentID, offset uint64, maxEntries int, maxBytes int) (entries [][]byte, err error) {
	err = s.call("read", func(st engine.SegmentStore) error {
		entries, err = st.Read(ctx, id, offset, maxEntries, maxBytes)
		return err
	})
	return entries, err
}

// Seal seals through the plugin.
func (s *Store) Seal(ctx context.Context, id engine.SegmentID) (info engine.SegmentInfo, err error) {
	err = s.call("seal", func(st engine.SegmentStore) error {
		info, err = st.Seal(ctx, id)
		return err
	})
	return info, err
}

// Stat reports through the plugin.
func (s *Store) Stat(ctx context.Context, id engine.SegmentID) (info engine.SegmentInfo, err error) {
	err = s.call("stat", func(st engine.SegmentStore) error {
		info, err = st.Stat(ctx, id)
		return err
	})
	return info, err
}

// List lists through the plugin.
func (s *Store) List(ctx context.Context, topic string) (infos []engine.SegmentInfo, err error) {
	err = s.call("list", func(st engine.SegmentStore) error {
		infos, err = st.List(ctx, topic)
		return err
	})
	return infos, err
}

// Delete deletes through the plugin.
func (s *Store) Delete(ctx context.Context, id engine.SegmentID) error {
	return s.call("delete", func(st engine.SegmentStore) error { return st.Delete(ctx, id) })
}

// Sync syncs through the plugin.
func (s *Store) Sync(ctx context.Context) error {
	return s.call("sync", func(st engine.SegmentStore) error { return st.Sync(ctx) })
}

// Close stops supervising, closes the plugin's store and ends the process.
// Idempotent; later calls fail with engine.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	inst := s.inst
	s.inst = nil
	close(s.closing)
	s.cancelClosing()
	s.mu.Unlock()
	// Wait for the supervisor first: it may be mid-launch of a replacement,
	// which it then stops itself.
	s.wg.Wait()
	if inst == nil {
		return nil
	}
	err := inst.stop(true)
	s.logger.Info("plugin stopped", "pid", inst.pid)
	if err != nil {
		return fmt.Errorf("pluginhost: close %s: %w", s.cfg.Name, err)
	}
	return nil
}

// supervise watches the current process and relaunches it when it dies.
func (s *Store) supervise(inst *instance) {
	defer s.wg.Done()
	tick := time.NewTicker(exitPollInterval)
	defer tick.Stop()
	backoff := s.cfg.RestartBackoffMin
	var probeC <-chan time.Time
	if s.cfg.ProbeInterval > 0 {
		probe := time.NewTicker(s.cfg.ProbeInterval)
		defer probe.Stop()
		probeC = probe.C
	}
	failedProbes := 0
	for {
		select {
		case <-s.closing:
			return
		case <-tick.C:
		case <-s.kick:
		case <-probeC:
			failedProbes = s.probe(inst, failedProbes)
			continue
		}
		if !inst.client.Exited() {
			continue
		}
		failedProbes = 0
		uptime := time.Since(inst.started)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		s.inst = nil
		s.mu.Unlock()
		s.logger.Error("plugin exited unexpectedly; requests fail with backend unavailable until it is restarted",
			"pid", inst.pid, "uptime", uptime.Round(time.Millisecond))
		_ = inst.stop(false) // reap and release go-plugin's resources
		// A plugin that ran for a while crashed for a new reason: start
		// over from the shortest wait.
		if uptime > 2*s.cfg.RestartBackoffMax {
			backoff = s.cfg.RestartBackoffMin
		}
		next, ok := s.relaunch(&backoff)
		if !ok {
			return
		}
		inst = next
	}
}

// probeTopic names the segment a liveness probe asks about; it need not
// exist (ErrNotFound is a healthy answer).
const probeTopic = "__walrus_pluginhost_probe"

// probe checks that the plugin still answers and returns the new count of
// consecutive failed probes. A plugin that is alive but wedged (a deadlock,
// a stuck disk) would otherwise hold every call for CallTimeout forever;
// after ProbeFailures failures it is killed, and the exit is handled like a
// crash on the next poll.
func (s *Store) probe(inst *instance, failed int) int {
	ctx, cancel := context.WithTimeout(s.closingCtx, s.cfg.ProbeTimeout)
	defer cancel()
	_, err := inst.store.Stat(ctx, engine.SegmentID{Topic: probeTopic})
	if err == nil || errors.Is(err, engine.ErrNotFound) || errors.Is(err, engine.ErrClosed) || s.closingCtx.Err() != nil {
		return 0
	}
	failed++
	s.logger.Warn("plugin liveness probe failed", "pid", inst.pid, "failures", failed, "err", err)
	if failed < s.cfg.ProbeFailures {
		return failed
	}
	s.logger.Error("plugin unresponsive; killing it so it is restarted", "pid", inst.pid, "failures", failed)
	if p, err := os.FindProcess(inst.pid); err == nil {
		_ = p.Kill()
	}
	return 0
}

// relaunch tries to start the plugin again until it succeeds or the store
// closes, waiting backoff (doubling, capped) before each attempt. There is
// no attempt cap on purpose: the node stays up and must recover whenever
// the plugin becomes startable again.
func (s *Store) relaunch(backoff *time.Duration) (*instance, bool) {
	for attempt := 1; ; attempt++ {
		wait := time.NewTimer(*backoff)
		select {
		case <-s.closing:
			wait.Stop()
			return nil, false
		case <-wait.C:
		}
		*backoff = min(*backoff*2, s.cfg.RestartBackoffMax)
		inst, err := launch(context.Background(), s.cfg, s.logger)
		if err != nil {
			s.logger.Error("plugin restart failed", "attempt", attempt, "retry_in", *backoff, "err", err)
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = inst.stop(true)
			return nil, false
		}
		s.inst = inst
		s.mu.Unlock()
		n := s.restarts.Add(1)
		s.logger.Warn("plugin restarted", "pid", inst.pid, "restarts", n, "attempt", attempt)
		if s.cfg.OnRestart != nil {
			s.cfg.OnRestart()
		}
		return inst, true
	}
}
