package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/placement"
	"github.com/walrus-go/walrus/node/retry"
	"github.com/walrus-go/walrus/node/wire"
)

// Bounds of the creation batcher.
const (
	maxCreateBatch = 1024  // topics per Raft entry
	maxCreateQueue = 65536 // creations waiting for a proposal
)

// errCreateQueueFull refuses a creation when too many wait already.
var errCreateQueueFull = errors.New("too many topic creations in progress; retry")

// creations batches the Raft leader's topic creations: while one proposal
// is in flight, the creations that arrive wait and then go together in one
// CreateTopics entry, so many clients (or one pipelining REGISTERs) are not
// bounded by one Raft round trip per topic. The caller whose creation
// found nothing in flight sends the batches; no goroutine of its own.
type creations struct {
	mu      sync.Mutex
	sending bool
	queue   []*creation
}

type creation struct {
	topic   string
	rf, ack int
	done    chan error
}

// CreateTopicLocal is the Raft leader's side of topic creation: it picks
// the first segment's leader round-robin over the live voters (spreading
// topics) and its replica set, and proposes the topic, batched with the
// creations in flight at the same time.
func (r *Router) CreateTopicLocal(ctx context.Context, topic string, rf, ack int) error {
	if _, ok := r.FSM.Route(topic); ok {
		return nil
	}
	c := &creation{topic: topic, rf: rf, ack: ack, done: make(chan error, 1)}
	q := &r.creates
	q.mu.Lock()
	if len(q.queue) >= maxCreateQueue {
		q.mu.Unlock()
		return fmt.Errorf("create %s: %w", topic, errCreateQueueFull)
	}
	q.queue = append(q.queue, c)
	send := !q.sending
	q.sending = true
	q.mu.Unlock()
	if send {
		r.sendCreations()
	}
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendCreations proposes the queued creations, a batch at a time, until
// the queue is empty.
func (r *Router) sendCreations() {
	q := &r.creates
	for {
		q.mu.Lock()
		n := min(len(q.queue), maxCreateBatch)
		if n == 0 {
			q.sending = false
			q.queue = nil
			q.mu.Unlock()
			return
		}
		batch := q.queue[:n:n]
		q.queue = q.queue[n:]
		q.mu.Unlock()
		err := r.proposeCreations(batch)
		for _, c := range batch {
			c.done <- err
		}
	}
}

func (r *Router) proposeCreations(batch []*creation) error {
	live, err := r.Leader.LiveVoters()
	if err != nil {
		return err
	}
	count := r.FSM.TopicCount()
	now := time.Now().UnixMilli()
	cmds := make([]metadata.CreateTopic, 0, len(batch))
	seen := make(map[string]bool, len(batch))
	for _, c := range batch {
		if seen[c.topic] {
			continue
		}
		seen[c.topic] = true
		rf, ack := c.rf, c.ack
		if rf <= 0 {
			rf = r.cfg.ReplicationFactor
		}
		if ack < 0 {
			ack = r.cfg.AckQuorum
		}
		leader := placement.FirstLeader(live, count+len(cmds), r.cfg.Self)
		cmds = append(cmds, metadata.CreateTopic{Topic: c.topic, Leader: leader, ReplicationFactor: rf, AckQuorum: ack,
			Replicas: placement.NextReplicas(rf, leader, live), Timed: true, OpenedMs: now})
	}
	var cmd metadata.Command = metadata.CreateTopics{Topics: cmds}
	if len(cmds) == 1 {
		cmd = cmds[0]
	}
	// The proposal serves every caller in the batch, not only the one
	// sending it: bound it by the request timeout, not by its context.
	ctx, cancel := context.WithTimeout(context.Background(), retry.RequestTimeout)
	defer cancel()
	res, err := r.Cons.Propose(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		if !wire.IsNotRaftLeader(err) {
			r.Logger.Error("Raft consensus failed", "op", "create_topic", "topics", len(cmds), "err", err)
		}
		return err
	}
	for _, c := range cmds {
		r.Logger.Info("topic created", "topic", c.Topic, "leader", c.Leader)
	}
	return nil
}
