package cursor

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRetryGetsTheSameAnswer: a GET retried with the same id (its first
// reply was lost) is not handed out twice.
func TestRetryGetsTheSameAnswer(t *testing.T) {
	var a answers
	var calls atomic.Int32
	next := func() ([][]byte, bool, error) {
		n := calls.Add(1)
		return [][]byte{{byte(n)}}, false, nil
	}
	ctx := context.Background()
	first, _, _ := a.do(ctx, reqKey{1, 7}, next)
	again, _, _ := a.do(ctx, reqKey{1, 7}, next)
	if calls.Load() != 1 || string(first[0]) != string(again[0]) {
		t.Fatalf("retry computed again: calls %d, %v vs %v", calls.Load(), first, again)
	}
	other, _, _ := a.do(ctx, reqKey{2, 7}, next)
	if calls.Load() != 2 || other[0][0] != 2 {
		t.Fatalf("another node's request shared an answer: %v", other)
	}
}

// TestConcurrentRetryWaits: a retry that arrives while the first attempt
// is still running waits for its answer instead of reading on.
func TestConcurrentRetryWaits(t *testing.T) {
	var a answers
	release := make(chan struct{})
	var calls atomic.Int32
	slow := func() ([][]byte, bool, error) {
		calls.Add(1)
		<-release
		return [][]byte{[]byte("x")}, false, nil
	}
	var wg sync.WaitGroup
	results := make([][][]byte, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _, _ = a.do(context.Background(), reqKey{1, 1}, slow)
		}()
	}
	// Release once the first attempt is running; a second attempt that
	// did not wait for it would call slow again and count 2.
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() == 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 || string(results[0][0]) != "x" || string(results[1][0]) != "x" {
		t.Fatalf("calls %d, results %q", calls.Load(), results)
	}
}

// TestFailureIsNotRemembered: an attempt that handed nothing out may be
// computed again.
func TestFailureIsNotRemembered(t *testing.T) {
	var a answers
	boom := errors.New("holder down")
	if _, _, err := a.do(context.Background(), reqKey{1, 1}, func() ([][]byte, bool, error) { return nil, false, boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	got, _, err := a.do(context.Background(), reqKey{1, 1}, func() ([][]byte, bool, error) { return [][]byte{[]byte("ok")}, false, nil })
	if err != nil || string(got[0]) != "ok" {
		t.Fatalf("retry after a failure: %q %v", got, err)
	}
}

func TestAnswersAreBounded(t *testing.T) {
	var a answers
	for i := range dedupMaxAnswers + 100 {
		_, _, _ = a.do(context.Background(), reqKey{1, uint64(i + 1)}, func() ([][]byte, bool, error) { return [][]byte{{1}}, false, nil })
	}
	if len(a.m) > dedupMaxAnswers || len(a.order) > dedupMaxAnswers {
		t.Fatalf("kept %d answers (%d in order), bound %d", len(a.m), len(a.order), dedupMaxAnswers)
	}
	big := make([]byte, dedupMaxBytes/4)
	for i := range 8 {
		_, _, _ = a.do(context.Background(), reqKey{2, uint64(i + 1)}, func() ([][]byte, bool, error) { return [][]byte{big}, false, nil })
	}
	if a.bytes > dedupMaxBytes {
		t.Fatalf("kept %d bytes, bound %d", a.bytes, dedupMaxBytes)
	}
}
