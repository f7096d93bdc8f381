package metadata

import (
	"maps"
	"slices"
	"sync"
)

// LeaderIndex follows the metadata's change log to know which topics each
// node leads the open segment of, so that the failover loop looks only at
// the topics of a node that is down instead of at every topic each tick.
// Its memory is one map entry per topic.
type LeaderIndex struct {
	mu       sync.Mutex
	follow   Follower
	leaderOf map[string]uint64
	byLeader map[uint64]map[string]struct{}
}

// Refresh brings the index up to f's current state.
func (x *LeaderIndex) Refresh(f *FSM) {
	x.mu.Lock()
	defer x.mu.Unlock()
	changed, full := x.follow.Next(f, ChangeRoute)
	if full {
		x.leaderOf = map[string]uint64{}
		x.byLeader = map[uint64]map[string]struct{}{}
	}
	for _, topic := range changed {
		r, found := f.Route(topic)
		x.setLocked(topic, r.Leader, found)
	}
}

func (x *LeaderIndex) setLocked(topic string, leader uint64, exists bool) {
	if old, ok := x.leaderOf[topic]; ok {
		if exists && old == leader {
			return
		}
		delete(x.byLeader[old], topic)
		if len(x.byLeader[old]) == 0 {
			delete(x.byLeader, old)
		}
		delete(x.leaderOf, topic)
	}
	if !exists {
		return
	}
	x.leaderOf[topic] = leader
	set := x.byLeader[leader]
	if set == nil {
		set = map[string]struct{}{}
		x.byLeader[leader] = set
	}
	set[topic] = struct{}{}
}

// Leaders returns the nodes that lead at least one open segment, in order.
func (x *LeaderIndex) Leaders() []uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Sorted(maps.Keys(x.byLeader))
}

// TopicsLedBy returns the topics whose open segment node leads, sorted.
func (x *LeaderIndex) TopicsLedBy(node uint64) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Sorted(maps.Keys(x.byLeader[node]))
}
