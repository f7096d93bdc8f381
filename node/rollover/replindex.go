package rollover

import (
	"maps"
	"slices"
	"sync"

	"github.com/walrus-go/walrus/node/metadata"
)

// replicaIndex follows the metadata's change log to know, per node, the
// topics with a segment replicated on it, and which topics have a replica
// set smaller than their factor. The under-replication report then looks
// only at the topics of a node that is down (or gone, or full) and at the
// short ones, instead of at every topic each second.
type replicaIndex struct {
	mu         sync.Mutex
	follow     metadata.Follower
	topicNodes map[string][]uint64
	nodeTopics map[uint64]map[string]struct{}
	// short: topics whose smallest replica set is below their factor,
	// with that size and the factor (short once enough voters are up).
	short map[string]shortness
}

type shortness struct{ smallest, rf int }

func (x *replicaIndex) refresh(f *metadata.FSM) {
	changed, full := x.follow.Next(f, metadata.ChangeRoute)
	if full {
		x.topicNodes = map[string][]uint64{}
		x.nodeTopics = map[uint64]map[string]struct{}{}
		x.short = map[string]shortness{}
	}
	for _, name := range changed {
		x.rebuild(f, name)
	}
}

func (x *replicaIndex) rebuild(f *metadata.FSM, topic string) {
	for _, id := range x.topicNodes[topic] {
		delete(x.nodeTopics[id], topic)
		if len(x.nodeTopics[id]) == 0 {
			delete(x.nodeTopics, id)
		}
	}
	delete(x.topicNodes, topic)
	delete(x.short, topic)
	var nodes []uint64
	sh := shortness{smallest: -1}
	f.View(topic, func(t *metadata.Topic) {
		sh.rf = max(t.ReplicationFactor, 1)
		if sh.rf <= 1 {
			return // not replicated: never under-replicated
		}
		for _, set := range t.Replicas {
			nodes = append(nodes, set...)
			if sh.smallest < 0 || len(set) < sh.smallest {
				sh.smallest = len(set)
			}
		}
	})
	slices.Sort(nodes)
	nodes = slices.Compact(nodes)
	if len(nodes) > 0 {
		x.topicNodes[topic] = nodes
	}
	for _, id := range nodes {
		set := x.nodeTopics[id]
		if set == nil {
			set = map[string]struct{}{}
			x.nodeTopics[id] = set
		}
		set[topic] = struct{}{}
	}
	if sh.smallest >= 0 && sh.smallest < sh.rf {
		x.short[topic] = sh
	}
}

// suspects returns, sorted, the topics that may be under-replicated: those
// with a replica on a node bad reports, and those short for voters voters.
func (x *replicaIndex) suspects(f *metadata.FSM, voters int, bad func(id uint64) bool) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.refresh(f)
	var out []string
	for id, topics := range x.nodeTopics {
		if bad(id) {
			out = slices.AppendSeq(out, maps.Keys(topics))
		}
	}
	for topic, sh := range x.short {
		if sh.smallest < min(sh.rf, voters) {
			out = append(out, topic)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
