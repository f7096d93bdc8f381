package metrics

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, fmt.Errorf("no snapshots") }
func (nopFSM) Restore(io.ReadCloser) error         { return nil }

func TestWatchRaftCountsElection(t *testing.T) {
	m := New(1)
	conf := raft.DefaultConfig()
	conf.LocalID = "1"
	conf.Logger = hclog.NewNullLogger()
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	store := raft.NewInmemStore()
	_, trans := raft.NewInmemTransport("1")
	r, err := raft.NewRaft(conf, nopFSM{}, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Shutdown().Error() }()

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	registered := make(chan struct{})
	wg.Add(1)
	go func() { defer wg.Done(); m.watchRaft(ctx, r, func() { close(registered) }) }()
	defer func() { cancel(); wg.Wait() }()

	// The node has no configuration, so no election can start before the
	// observer is registered and the cluster bootstrapped.
	<-registered
	if testutil.ToFloat64(m.Elections) != 0 {
		t.Fatal("election counted before bootstrap")
	}
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: "1", Address: trans.LocalAddr()}}}).Error(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return testutil.ToFloat64(m.Elections) >= 1 && testutil.ToFloat64(m.LeaderChanges) >= 1
	})
	if r.State() != raft.Leader {
		t.Fatalf("state %v", r.State())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
