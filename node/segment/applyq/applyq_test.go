package applyq

import (
	"context"
	"errors"
	"sync"
	"testing"
)

var errClosed = errors.New("closed")

func TestBatchesApplyInOrderPerSegmentAndCloseAnswersTheRest(t *testing.T) {
	var mu sync.Mutex
	got := map[uint64][]uint64{}
	block := make(chan struct{})
	q := New(func(_ context.Context, _ string, seg, _, first uint64, _ [][]byte) (uint64, error) {
		if seg == 9 {
			<-block // a stuck disk on one segment
		}
		mu.Lock()
		defer mu.Unlock()
		got[seg] = append(got[seg], first)
		return first + 1, nil
	}, errClosed)
	var wg sync.WaitGroup
	for seg := uint64(1); seg <= 3; seg++ {
		for first := uint64(0); first < 50; first++ {
			wg.Add(1)
			q.Enqueue("t", seg, 1, first, nil, func(n uint64, err error) {
				defer wg.Done()
				if err != nil || n != first+1 {
					t.Errorf("segment %d batch %d: %d, %v", seg, first, n, err)
				}
			})
		}
	}
	wg.Wait() // segment 9 being stuck holds up nothing else
	for seg, firsts := range got {
		for i, f := range firsts {
			if f != uint64(i) {
				t.Fatalf("segment %d applied out of order: %v", seg, firsts)
			}
		}
	}
	stuck := make(chan error, 1)
	q.Enqueue("t", 9, 1, 0, nil, func(_ uint64, err error) { stuck <- err })
	closed := make(chan struct{})
	go func() { q.Close(); close(closed) }()
	close(block)
	<-closed
	if err := <-stuck; err != nil && !errors.Is(err, errClosed) {
		t.Fatalf("stuck batch: %v", err)
	}
	done := make(chan error, 1)
	q.Enqueue("t", 1, 1, 0, nil, func(_ uint64, err error) { done <- err })
	if err := <-done; !errors.Is(err, errClosed) {
		t.Fatalf("batch after Close: %v, want the closed error", err)
	}
}
