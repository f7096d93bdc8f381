// Package statedoc builds the STATE and TOPICS documents of a topic from
// its metadata.
package statedoc

import (
	"strconv"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/status"
)

// State builds the STATE document of one topic; under lists the
// cluster's under-replicated segments (those of other topics are skipped).
func State(t metadata.Topic, under []status.UnderReplicated, def metadata.Limits) status.State {
	s := status.State{
		Topic:          t.Name,
		CurrentSegment: t.CurrentSegment,
		LeaderNode:     t.LeaderNode,
		SealedSegments: make(map[string]uint64, len(t.SealedSegments)),
		SegmentLeaders: make(map[string]uint64, len(t.SegmentLeaders)),
		SealedOffset:   t.SealedOffset,
		Epoch:          t.Epoch,
		Cursor:         status.Cursor(t.Cursor),

		ReplicationFactor: max(t.ReplicationFactor, 1),
		AckQuorum:         t.SegmentAckQuorum(t.CurrentSegment),
		Earliest:          t.Earliest,
		Retention:         status.Retention(t.Retention.Effective(def)),
		Skipped:           t.Skipped[""],
	}
	for k, v := range t.SealedSegments {
		s.SealedSegments[strconv.FormatUint(k, 10)] = v
	}
	for k, v := range t.SegmentLeaders {
		s.SegmentLeaders[strconv.FormatUint(k, 10)] = v
	}
	if len(t.Replicas) > 0 {
		s.Replicas = make(map[string][]uint64, len(t.Replicas))
		for k, v := range t.Replicas {
			s.Replicas[strconv.FormatUint(k, 10)] = v
		}
	}
	for _, u := range under {
		if u.Topic != t.Name {
			continue
		}
		if s.UnderReplicated == nil {
			s.UnderReplicated = map[string][]uint64{}
		}
		s.UnderReplicated[strconv.FormatUint(u.Segment, 10)] = u.Missing
	}
	return s
}

// Summary summarises a topic whose open segment holds openCount entries.
func Summary(t metadata.Topic, openCount uint64, def metadata.Limits) status.TopicSummary {
	return status.TopicSummary{
		Topic: t.Name, CurrentSegment: t.CurrentSegment, LeaderNode: t.LeaderNode, SealedSegments: len(t.SealedSegments),
		Entries: t.SealedOffset + openCount - t.Earliest, Earliest: t.Earliest, Retention: status.Retention(t.Retention.Effective(def)),
	}
}

// ClusterStats is the Prometheus cluster collector's view of the
// metadata: per topic, its open segment, leader and sealed segments, and
// how many sealed segments self leads.
func ClusterStats(fsm *metadata.FSM, self uint64) metrics.ClusterStats {
	var out metrics.ClusterStats
	fsm.EachTopic(func(t *metadata.Topic) {
		led := 0
		for seg, leader := range t.SegmentLeaders {
			if leader == self && seg != t.CurrentSegment {
				led++
			}
		}
		out.Topics = append(out.Topics, metrics.TopicStats{
			Name:           t.Name,
			CurrentSegment: t.CurrentSegment,
			LeaderNode:     t.LeaderNode,
			SealedSegments: len(t.SealedSegments),
			SealedEntries:  t.SealedOffset,
			SealedLedHere:  led,
		})
	})
	return out
}
