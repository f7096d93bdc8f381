package retry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/rpc"
	"github.com/walrus-go/walrus/node/wire"
)

func TestTransient(t *testing.T) {
	yes := []error{
		&wire.NotLeaderError{}, fmt.Errorf("x: %w", wire.ErrRemoteNotLeader), wire.ErrFenced,
		wire.ErrNoRaftLeader, wire.ErrNotRaftLeader, wire.ErrNoAddress, rpc.ErrConnLost,
	}
	for _, err := range yes {
		if !Transient(err) {
			t.Errorf("%v should be transient", err)
		}
	}
	for _, err := range []error{wire.ErrUnknownTopic, errors.New("disk full"), wire.ErrUnacked} {
		if Transient(err) {
			t.Errorf("%v should not be transient", err)
		}
	}
}

func TestBackoffWakes(t *testing.T) {
	var b Backoff
	changed := make(chan struct{})
	close(changed)
	if err := b.Wait(context.Background(), changed, nil); err != nil {
		t.Fatal(err)
	}
	stopping := make(chan struct{})
	close(stopping)
	// A long step, so only the stop channel can end the wait.
	b.d = time.Hour
	if err := b.Wait(context.Background(), nil, stopping); !errors.Is(err, wire.ErrShuttingDown) {
		t.Fatalf("stopping: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.d = time.Hour
	if err := b.Wait(ctx, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("ctx: %v", err)
	}
	if b.d != backoffMax {
		t.Fatalf("backoff grew to %v, want capped at %v", b.d, backoffMax)
	}
}
