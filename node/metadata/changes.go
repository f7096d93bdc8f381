package metadata

import "sort"

// Change kinds: what about a topic an applied command changed. Consumers
// that follow the changes (lease sync, replica catch-up, the janitor) pick
// the kinds they care about, so a stream of cursor commits never makes
// them look at anything.
const (
	// ChangeRoute: the topic was created or deleted, or its open segment,
	// leaders, replica sets or sealed segments changed.
	ChangeRoute uint8 = 1 << iota
	// ChangeOffsets: a shared cursor or group offset moved.
	ChangeOffsets
	// ChangeRetention: the topic's limits changed, or segments (or the
	// whole topic) were deleted.
	ChangeRetention
)

// changeLogCap bounds the change log. A consumer that falls further
// behind than this many topic changes rescans everything once.
const changeLogCap = 1 << 16

type change struct {
	version uint64
	topic   string
	kinds   uint8
}

// changeLog is a ring of the latest topic changes in version order.
type changeLog struct {
	ring  []change
	start int // index of the oldest entry
	n     int
	// floor: changes at or below it are not all in the ring (dropped, or
	// before a snapshot restore).
	floor uint64
}

func (l *changeLog) add(c change) {
	if l.n < changeLogCap {
		l.ring = append(l.ring, c) // linear (start 0) until full
		l.n++
		return
	}
	l.floor = l.ring[l.start].version
	l.ring[l.start] = c
	l.start = (l.start + 1) % changeLogCap
}

func (l *changeLog) at(i int) change { return l.ring[(l.start+i)%len(l.ring)] }

// reset forgets everything up to version v (the state was replaced).
func (l *changeLog) reset(v uint64) {
	l.ring, l.start, l.n, l.floor = nil, 0, 0, v
}

// ChangesSince calls fn for every topic with a change of one of kinds
// after version since, and returns the current version. It returns ok
// false (and calls fn for nothing) when those changes are no longer all
// known: the caller rescans every topic instead. A topic may be reported
// more than once.
func (f *FSM) ChangesSince(since uint64, kinds uint8, fn func(topic string)) (now uint64, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	l := &f.changes
	if since < l.floor {
		return f.version, false
	}
	i := sort.Search(l.n, func(i int) bool { return l.at(i).version > since })
	for ; i < l.n; i++ {
		if c := l.at(i); c.kinds&kinds != 0 {
			fn(c.topic)
		}
	}
	return f.version, true
}

// recordLocked notes what cmd changed (f.mu held, before notifyLocked
// bumps the version: the change belongs to the next version).
func (f *FSM) recordLocked(cmd Command) {
	v := f.version + 1
	add := func(topic string, kinds uint8) { f.changes.add(change{version: v, topic: topic, kinds: kinds}) }
	switch c := cmd.(type) {
	case CreateTopic:
		add(c.Topic, ChangeRoute)
	case Rollover:
		add(c.Topic, ChangeRoute)
	case SetReplicas:
		add(c.Topic, ChangeRoute)
	case CommitCursors:
		for _, cc := range c.Cursors {
			add(cc.Topic, ChangeOffsets)
		}
	case CommitGroups:
		for _, gc := range c.Commits {
			add(gc.Topic, ChangeOffsets)
		}
	case AlterTopic:
		add(c.Topic, ChangeRetention)
	case DeleteSegments:
		add(c.Topic, ChangeRoute|ChangeRetention|ChangeOffsets)
	case DeleteTopic:
		add(c.Topic, ChangeRoute|ChangeRetention|ChangeOffsets)
	case CreateTopics:
		for _, t := range c.Topics {
			add(t.Topic, ChangeRoute)
		}
	}
}

// ChangeSource is what a Follower reads (the FSM).
type ChangeSource interface {
	ChangesSince(since uint64, kinds uint8, fn func(topic string)) (uint64, bool)
	Version() uint64
	TopicNames() []string
}

// Follower is a consumer's place in the change log: the version it has
// seen, and whether it ever did a full scan. The zero value starts with
// one.
type Follower struct {
	seen    uint64
	scanned bool
}

// Next returns the topics changed (by one of kinds) since the last call,
// or, with full true, every topic: on the first call, and when the log no
// longer covers the gap (the consumer then rebuilds everything it keeps).
func (fl *Follower) Next(f ChangeSource, kinds uint8) (topics []string, full bool) {
	now, ok := f.ChangesSince(fl.seen, kinds, func(t string) { topics = append(topics, t) })
	if fl.scanned && ok {
		fl.seen = now
		return topics, false
	}
	fl.seen, fl.scanned = f.Version(), true
	return f.TopicNames(), true
}

// Reset makes the next call a full scan.
func (fl *Follower) Reset() { fl.scanned = false }
