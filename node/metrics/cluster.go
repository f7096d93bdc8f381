package metrics

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// ClusterStats is a snapshot of the replicated topic metadata, taken at
// scrape time by the function given to SetClusterSource. Every node holds
// the same metadata, so these series agree across nodes (up to Raft apply
// lag); dashboards take max() across nodes.
type ClusterStats struct {
	Topics []TopicStats
}

// TopicStats is one topic's metadata, as in the STATE JSON.
type TopicStats struct {
	Name string
	// CurrentSegment is the open segment's id and LeaderNode its leader.
	CurrentSegment uint64
	LeaderNode     uint64
	// SealedSegments is the number of sealed segments and SealedEntries
	// the sum of their final entry counts.
	SealedSegments int
	SealedEntries  uint64
	// SealedLedHere counts the sealed segments this node led (STATE's
	// segment_leaders), counted by the caller so no map is copied.
	SealedLedHere int
}

var (
	descTopics        = prometheus.NewDesc("walrus_topics", "Topics in the cluster metadata.", nil, nil)
	descSegmentsOpen  = prometheus.NewDesc("walrus_segments_open", "Open segments in the cluster (one per topic).", nil, nil)
	descSegmentsSeal  = prometheus.NewDesc("walrus_segments_sealed", "Sealed segments in the cluster.", nil, nil)
	descSegmentsLed   = prometheus.NewDesc("walrus_segments_led", "Segments this node leads (open) or led (sealed), from segment_leaders.", []string{"state"}, nil)
	descTopicCurrent  = prometheus.NewDesc("walrus_topic_current_segment", "Id of the topic's open segment (STATE current_segment).", []string{"topic"}, nil)
	descTopicLeader   = prometheus.NewDesc("walrus_topic_segment_leader", "Node id leading the topic's open segment (STATE leader_node).", []string{"topic"}, nil)
	descTopicSealed   = prometheus.NewDesc("walrus_topic_sealed_segments", "Sealed segments of the topic.", []string{"topic"}, nil)
	descTopicSealedEn = prometheus.NewDesc("walrus_topic_sealed_entries", "Entries in the topic's sealed segments.", []string{"topic"}, nil)
	descClusterUp     = prometheus.NewDesc("walrus_cluster_source_up", "1 when a cluster metadata source is installed.", nil, nil)
)

// clusterCollector reads ClusterStats at scrape time. Per-topic series are
// emitted for at most MaxTopicLabels topics (by name order) so the series
// count stays bounded; the cluster totals always cover every topic.
type clusterCollector struct {
	nodeID uint64
	mu     sync.RWMutex
	source func() ClusterStats
}

// SetClusterSource installs the function the topic and segment gauges are
// read from at scrape time (nil removes it). fn must be safe for concurrent
// use and should copy what it needs under the node's lock.
func (m *Metrics) SetClusterSource(fn func() ClusterStats) {
	m.cluster.mu.Lock()
	m.cluster.source = fn
	m.cluster.mu.Unlock()
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTopics, descSegmentsOpen, descSegmentsSeal, descSegmentsLed,
		descTopicCurrent, descTopicLeader, descTopicSealed, descTopicSealedEn, descClusterUp} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	fn := c.source
	c.mu.RUnlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if fn == nil {
		gauge(descClusterUp, 0)
		return
	}
	gauge(descClusterUp, 1)
	s := fn()
	topics := append([]TopicStats(nil), s.Topics...)
	sort.Slice(topics, func(i, j int) bool { return topics[i].Name < topics[j].Name })
	var sealed, ledOpen, ledSealed int
	for i, t := range topics {
		sealed += t.SealedSegments
		if t.LeaderNode == c.nodeID {
			ledOpen++
		}
		ledSealed += t.SealedLedHere
		if i >= MaxTopicLabels {
			continue
		}
		gauge(descTopicCurrent, float64(t.CurrentSegment), t.Name)
		gauge(descTopicLeader, float64(t.LeaderNode), t.Name)
		gauge(descTopicSealed, float64(t.SealedSegments), t.Name)
		gauge(descTopicSealedEn, float64(t.SealedEntries), t.Name)
	}
	gauge(descTopics, float64(len(topics)))
	gauge(descSegmentsOpen, float64(len(topics)))
	gauge(descSegmentsSeal, float64(sealed))
	gauge(descSegmentsLed, float64(ledOpen), "open")
	gauge(descSegmentsLed, float64(ledSealed), "sealed")
}
