package tlsconf

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Listener names (log attribute and metric label values).
const (
	ListenerClient  = "client"
	ListenerHTTP    = "http"
	ListenerCluster = "cluster"
)

// Set is the TLS of one node: Client serves the client-facing listeners
// (client, HTTP and later Kafka ports), Cluster the peer port. A nil
// member means plaintext there.
type Set struct {
	Client, Cluster *Source
}

// NewSet loads the node's TLS files. onLoad (may be nil) receives each
// listener's certificate expiry after every successful load (the client
// source reports for both ListenerClient and ListenerHTTP).
func NewSet(client, cluster Files, logger *slog.Logger, onLoad func(listener string, notAfter time.Time)) (*Set, error) {
	report := func(names ...string) func(time.Time) {
		if onLoad == nil {
			return nil
		}
		return func(t time.Time) {
			for _, n := range names {
				onLoad(n, t)
			}
		}
	}
	s := &Set{}
	var err error
	if client.Enabled() {
		if s.Client, err = NewSource(ListenerClient, client, false, logger, report(ListenerClient, ListenerHTTP)); err != nil {
			return nil, err
		}
	}
	if cluster.Enabled() {
		if s.Cluster, err = NewSource(ListenerCluster, cluster, true, logger, report(ListenerCluster)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Set) sources() []*Source {
	var out []*Source
	for _, src := range []*Source{s.Client, s.Cluster} {
		if src != nil {
			out = append(out, src)
		}
	}
	return out
}

// Reload reloads every source (SIGHUP); sources that fail keep their
// material and their errors are joined.
func (s *Set) Reload() error {
	var errs []error
	for _, src := range s.sources() {
		errs = append(errs, src.Reload())
	}
	return errors.Join(errs...)
}

// Watch runs every source's Watch until ctx is done and they returned.
func (s *Set) Watch(ctx context.Context, interval time.Duration) {
	var wg sync.WaitGroup
	for _, src := range s.sources() {
		wg.Go(func() { src.Watch(ctx, interval) })
	}
	wg.Wait()
}
