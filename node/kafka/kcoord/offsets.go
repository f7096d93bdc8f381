package kcoord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/walrus-go/walrus/node/kafka"
	"github.com/walrus-go/walrus/node/kafka/kgroup"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/status"
	"github.com/walrus-go/walrus/node/wire"
)

// GroupStore runs group commands on the group coordinator (cluster.Cluster
// routes them to node/group on the Raft leader).
type GroupStore interface {
	Group(ctx context.Context, req *wire.GroupRequest) (*wire.GroupReply, error)
}

// Commits lists the Raft-committed group offsets (metadata.FSM).
type Commits interface {
	Groups(topic string) []metadata.GroupCommit
}

// ErrRefused is a group command the store answered with an error.
var ErrRefused = errors.New("group command refused")

// Offsets stores Kafka commits as node/group commits: partition p of
// topic T is the log kafka.LogName(T, p). Kafka's commit metadata string
// is not kept.
type Offsets struct {
	Store   GroupStore
	Commits Commits
}

var _ kgroup.Offsets = Offsets{}

func (o Offsets) run(ctx context.Context, req *wire.GroupRequest) (*wire.GroupReply, error) {
	rep, err := o.Store.Group(ctx, req)
	if err != nil {
		return nil, err
	}
	if protocol.ReplyKind(rep.Kind) == protocol.ReplyErr {
		return nil, fmt.Errorf("%w: group %s topic %s: %s", ErrRefused, req.Group, req.Topic, rep.Body)
	}
	return rep, nil
}

// commitErr gives kgroup the kinds of commit failure it answers per
// partition.
func commitErr(err error) error {
	switch {
	case errors.Is(err, wire.ErrUnknownTopic):
		return fmt.Errorf("%w: %w", kgroup.ErrUnknownPartition, err)
	case errors.Is(err, ErrRefused):
		return fmt.Errorf("%w: %w", kgroup.ErrInvalidOffset, err)
	}
	return err
}

// Commit stores each partition's offset (the next record to consume).
func (o Offsets) Commit(ctx context.Context, group string, commits []kgroup.Commit) error {
	for _, c := range commits {
		if c.Offset < 0 {
			continue // Kafka's "no offset": nothing to store
		}
		_, err := o.run(ctx, &wire.GroupRequest{Op: wire.GroupCommit, Group: group, Topic: kafka.LogName(c.Topic, c.Partition), Offsets: []uint64{uint64(c.Offset)}})
		if err != nil {
			return commitErr(err)
		}
	}
	return nil
}

// Committed returns the group's offset in a partition, read through the
// group coordinator (it may be ahead of Raft for Walrus READ/ACK
// consumers of the same group).
func (o Offsets) Committed(ctx context.Context, group, topic string, partition int32) (kgroup.Commit, bool, error) {
	rep, err := o.Store.Group(ctx, &wire.GroupRequest{Op: wire.GroupCommitted, Group: group, Topic: kafka.LogName(topic, partition)})
	if errors.Is(err, wire.ErrUnknownTopic) {
		return kgroup.Commit{}, false, nil
	}
	if err != nil {
		return kgroup.Commit{}, false, err
	}
	if protocol.ReplyKind(rep.Kind) == protocol.ReplyErr {
		return kgroup.Commit{}, false, nil // an unknown topic or partition has no offset
	}
	var doc status.Committed
	if err := json.Unmarshal(rep.Body, &doc); err != nil {
		return kgroup.Commit{}, false, fmt.Errorf("kafka offsets: decode COMMITTED reply: %w", err)
	}
	if doc.Offset < 0 {
		return kgroup.Commit{}, false, nil
	}
	return kgroup.Commit{Topic: topic, Partition: partition, Offset: doc.Offset}, true, nil
}

// ListCommitted returns every offset the group committed.
func (o Offsets) ListCommitted(_ context.Context, group string) ([]kgroup.Commit, error) {
	var out []kgroup.Commit
	for _, gc := range o.Commits.Groups("") {
		if gc.Group != group {
			continue
		}
		t, p := kafka.SplitLogName(gc.Topic)
		out = append(out, kgroup.Commit{Topic: t, Partition: p, Offset: int64(gc.Offset)})
	}
	slices.SortFunc(out, func(a, b kgroup.Commit) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out, nil
}

// Delete forgets the group's offset in one partition.
func (o Offsets) Delete(ctx context.Context, group, topic string, partition int32) error {
	_, err := o.run(ctx, &wire.GroupRequest{Op: wire.GroupDelete, Group: group, Topic: kafka.LogName(topic, partition)})
	if errors.Is(err, wire.ErrUnknownTopic) {
		return nil
	}
	return err
}

// Groups lists the groups with committed offsets.
func (o Offsets) Groups(context.Context) ([]string, error) {
	set := map[string]struct{}{}
	for _, gc := range o.Commits.Groups("") {
		set[gc.Group] = struct{}{}
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// DeleteGroup forgets every offset of the group.
func (o Offsets) DeleteGroup(ctx context.Context, group string) error {
	commits, err := o.ListCommitted(ctx, group)
	if err != nil {
		return err
	}
	for _, c := range commits {
		if err := o.Delete(ctx, group, c.Topic, c.Partition); err != nil {
			return err
		}
	}
	return nil
}
