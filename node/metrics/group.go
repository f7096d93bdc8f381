package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxGroupLabels bounds the (group, topic) pairs per Metrics that get a
// group label of their own. Pairs seen past the limit are reported under
// group=OtherGroup (with their topic label): their lag and pending are
// summed and their redeliveries counted together. Why: group names are
// client input (any READ names one), like topics. Unlike topics, a pair
// gives its slot back when DeleteGroup removes it, because a node holds
// only the groups it coordinates now and that set changes over its life.
const MaxGroupLabels = 256

// OtherGroup is the group label used once MaxGroupLabels pairs are held.
const OtherGroup = "_other"

// groupKey is a (group, topic) pair: as named by the caller, or as
// labelled on the series.
type groupKey struct{ group, topic string }

// groupPair is one (group, topic) pair the coordinator reported.
type groupPair struct {
	label        groupKey // the series it is reported under
	named        bool     // label.group is its own (it holds a slot)
	lag, pending uint64
}

// groupSeries is one labelled series set: the pairs reported under it and
// the sums of their gauges.
type groupSeries struct {
	pairs        int
	lag, pending uint64
}

// groups holds the consumer group series (set by the group coordinator).
// Gauges are sums over the pairs a label pair stands for, so a folded
// label pair (OtherGroup, or a topic folded by TopicLabel) reports the
// total of its pairs, and removing one pair leaves the others' share.
type groups struct {
	mu     sync.Mutex
	pairs  map[groupKey]*groupPair
	series map[groupKey]*groupSeries
	named  int // pairs holding a group label of their own

	lag          *prometheus.GaugeVec
	pending      *prometheus.GaugeVec
	redeliveries *prometheus.CounterVec
	skipped      *prometheus.CounterVec
	cursorSkip   *prometheus.CounterVec
}

func newGroups(r prometheus.Registerer) *groups {
	g := &groups{
		pairs:  make(map[groupKey]*groupPair),
		series: make(map[groupKey]*groupSeries),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "group", Name: "lag",
			Help: "Entries of the topic past the consumer group's committed offset (the group coordinator's view)."}, []string{"group", "topic"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "group", Name: "pending",
			Help: "Entries delivered to the consumer group and not yet acknowledged (the group coordinator's view)."}, []string{"group", "topic"}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "group", Name: "redeliveries_total",
			Help: "Entries delivered to the consumer group again after their lease ended unacknowledged."}, []string{"group", "topic"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "group", Name: "skipped_total",
			Help: "Entries retention deleted before the consumer group read them (the group moved to the earliest entry left)."}, []string{"group", "topic"}),
		cursorSkip: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "cursor", Name: "skipped_total",
			Help: "Entries retention deleted before the topic's shared GET cursor reached them."}, []string{"topic"}),
	}
	r.MustRegister(g.lag, g.pending, g.redeliveries, g.skipped, g.cursorSkip)
	return g
}

// groupPair returns the pair (group, topic), adding it and its series if
// it is new. Called with m.groups.mu held.
func (m *Metrics) groupPair(group, topic string) *groupPair {
	g := m.groups
	k := groupKey{group, topic}
	if p, ok := g.pairs[k]; ok {
		return p
	}
	p := &groupPair{label: groupKey{OtherGroup, m.TopicLabel(topic)}}
	if g.named < MaxGroupLabels {
		p.label.group, p.named = group, true
		g.named++
	}
	label := p.label
	g.pairs[k] = p
	s, ok := g.series[label]
	if !ok {
		s = &groupSeries{}
		g.series[label] = s
		// Every series exists from the pair's first report: the counter
		// needs a zero for rate()/increase() to see its first increments.
		g.lag.WithLabelValues(label.group, label.topic).Set(0)
		g.pending.WithLabelValues(label.group, label.topic).Set(0)
		g.redeliveries.WithLabelValues(label.group, label.topic)
		g.skipped.WithLabelValues(label.group, label.topic)
	}
	s.pairs++
	return p
}

// SetGroup reports consumer group group on topic as the group coordinator
// sees it now: lag entries readable past its committed offset and pending
// entries delivered but not yet acknowledged. The first report of a pair
// creates its walrus_group_* series; DeleteGroup removes them.
func (m *Metrics) SetGroup(group, topic string, lag, pending uint64) {
	g := m.groups
	g.mu.Lock()
	defer g.mu.Unlock()
	p := m.groupPair(group, topic)
	s := g.series[p.label]
	// Unsigned wrap-around keeps the sums exact: s.lag always holds the
	// true total of its pairs' last values.
	s.lag += lag - p.lag
	s.pending += pending - p.pending
	p.lag, p.pending = lag, pending
	g.lag.WithLabelValues(p.label.group, p.label.topic).Set(float64(s.lag))
	g.pending.WithLabelValues(p.label.group, p.label.topic).Set(float64(s.pending))
}

// AddRedeliveries counts n entries of topic delivered again to group after
// their lease ended. A pair not reported by SetGroup yet gets its series
// (lag and pending 0 until it is).
func (m *Metrics) AddRedeliveries(group, topic string, n int) {
	if n <= 0 {
		return
	}
	g := m.groups
	g.mu.Lock()
	defer g.mu.Unlock()
	p := m.groupPair(group, topic)
	g.redeliveries.WithLabelValues(p.label.group, p.label.topic).Add(float64(n))
}

// DeleteGroup forgets the pair (group, topic): call it when this node
// stops coordinating the group (it lost Raft leadership, the group went
// idle, its topic was deleted). Its walrus_group_* series are removed once
// no other pair is reported under the same labels; until then the gauges
// drop its share and the shared counter keeps counting. Unknown pairs are
// ignored.
func (m *Metrics) DeleteGroup(group, topic string) {
	g := m.groups
	g.mu.Lock()
	defer g.mu.Unlock()
	k := groupKey{group, topic}
	p, ok := g.pairs[k]
	if !ok {
		return
	}
	delete(g.pairs, k)
	if p.named {
		g.named--
	}
	s := g.series[p.label]
	s.pairs--
	if s.pairs == 0 {
		delete(g.series, p.label)
		g.lag.DeleteLabelValues(p.label.group, p.label.topic)
		g.pending.DeleteLabelValues(p.label.group, p.label.topic)
		g.redeliveries.DeleteLabelValues(p.label.group, p.label.topic)
		g.skipped.DeleteLabelValues(p.label.group, p.label.topic)
		return
	}
	s.lag -= p.lag
	s.pending -= p.pending
	g.lag.WithLabelValues(p.label.group, p.label.topic).Set(float64(s.lag))
	g.pending.WithLabelValues(p.label.group, p.label.topic).Set(float64(s.pending))
}

// AddSkipped counts n entries of topic that retention deleted before
// group read them.
func (m *Metrics) AddSkipped(group, topic string, n uint64) {
	if n == 0 {
		return
	}
	g := m.groups
	g.mu.Lock()
	defer g.mu.Unlock()
	p := m.groupPair(group, topic)
	g.skipped.WithLabelValues(p.label.group, p.label.topic).Add(float64(n))
}

// AddCursorSkipped counts n entries of topic that retention deleted
// before the shared GET cursor reached them.
func (m *Metrics) AddCursorSkipped(topic string, n uint64) {
	if n > 0 {
		m.groups.cursorSkip.WithLabelValues(m.TopicLabel(topic)).Add(float64(n))
	}
}
