package kgroup

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/walrus-go/walrus/internal/testcluster"
)

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves time on, firing due timers in deadline order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		var next *fakeTimer
		for i, t := range c.timers {
			if t.stopped {
				continue
			}
			if !t.at.After(end) {
				next = t
				t.stopped = true
				c.timers = append(c.timers[:i:i], c.timers[i+1:]...)
			}
			break
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		c.now = next.at
		c.mu.Unlock()
		next.f()
	}
}

type memOffsets struct {
	mu sync.Mutex
	m  map[string]map[[2]string]Commit
}

func newMemOffsets() *memOffsets { return &memOffsets{m: map[string]map[[2]string]Commit{}} }

func key(t string, p int32) [2]string { return [2]string{t, fmt.Sprint(p)} }

func (o *memOffsets) Commit(_ context.Context, g string, cs []Commit) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m[g] == nil {
		o.m[g] = map[[2]string]Commit{}
	}
	for _, c := range cs {
		o.m[g][key(c.Topic, c.Partition)] = c
	}
	return nil
}

func (o *memOffsets) Committed(_ context.Context, g, t string, p int32) (Commit, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c, ok := o.m[g][key(t, p)]
	return c, ok, nil
}

func (o *memOffsets) ListCommitted(_ context.Context, g string) ([]Commit, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Commit
	for _, c := range o.m[g] {
		out = append(out, c)
	}
	return out, nil
}

func (o *memOffsets) Delete(_ context.Context, g, t string, p int32) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m[g], key(t, p))
	if len(o.m[g]) == 0 {
		delete(o.m, g)
	}
	return nil
}

func (o *memOffsets) Groups(context.Context) ([]string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for g := range o.m {
		out = append(out, g)
	}
	sort.Strings(out)
	return out, nil
}

func (o *memOffsets) DeleteGroup(_ context.Context, g string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, g)
	return nil
}

type env struct {
	t     *testing.T
	clock *fakeClock
	offs  *memOffsets
	c     *Coordinator
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, clock: newFakeClock(), offs: newMemOffsets()}
	e.c = New(Config{Clock: e.clock, InitialDelay: 100 * time.Millisecond}, e.offs)
	t.Cleanup(e.c.Close)
	return e
}

// joinReq is a JoinGroup the way kgo sends it: consumer protocol type,
// cooperative-sticky preferred over range.
func joinReq(group, member string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = 9
	r.Group, r.MemberID, r.ProtocolType = group, member, "consumer"
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 45000, 60000
	for _, name := range []string{"cooperative-sticky", "range"} {
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = name
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Topics = []string{"orders"}
		p.Metadata = meta.AppendTo(nil)
		r.Protocols = append(r.Protocols, p)
	}
	return r
}

// join runs a blocking JoinGroup in the background.
func (e *env) join(req *kmsg.JoinGroupRequest) chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { ch <- e.c.JoinGroup(context.Background(), req, "kgo", "127.0.0.1") }()
	return ch
}

// memberID does the v4+ MEMBER_ID_REQUIRED first round trip.
func (e *env) memberID(group string) string {
	r := e.c.JoinGroup(context.Background(), joinReq(group, ""), "kgo", "127.0.0.1")
	if r.ErrorCode != errMemberIDRequired || r.MemberID == "" {
		e.t.Fatalf("first join: code %d id %q, want MEMBER_ID_REQUIRED and an id", r.ErrorCode, r.MemberID)
	}
	return r.MemberID
}

// waitJoined waits until n members of group are blocked in the join phase,
// or the phase already completed past generation gen.
func (e *env) waitJoined(group string, n int, gen int32) {
	err := testcluster.Poll(10*time.Second, func() error {
		e.c.mu.Lock()
		defer e.c.mu.Unlock()
		got := 0
		if g := e.c.groups[group]; g != nil {
			if g.generation > gen {
				return nil
			}
			for _, m := range g.members {
				if m.joinCh != nil {
					got++
				}
			}
		}
		if got != n {
			return fmt.Errorf("%d of %d members waiting in join", got, n)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) state(group string) string {
	r := e.c.DescribeGroups(context.Background(), &kmsg.DescribeGroupsRequest{Version: 5, Groups: []string{group}})
	return r.Groups[0].State
}

func recv[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("no answer within 10 s")
	}
	var zero T
	return zero
}
