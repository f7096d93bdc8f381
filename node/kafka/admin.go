package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/placement"
)

// partitions counts the consecutive logs T, T#1, ... of Kafka topic T.
func (s *Server) partitions(topic string) int32 {
	n := int32(0)
	for n < MaxPartitions {
		if _, ok := s.deps.FSM.Route(LogName(topic, n)); !ok {
			break
		}
		n++
	}
	return n
}

// metadata lists live brokers at their Kafka addresses and, per
// partition, the open segment's leader and replica set.
func (s *Server) metadata(ctx context.Context, req *kmsg.MetadataRequest) (*kmsg.MetadataResponse, error) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	for _, n := range s.deps.FSM.Nodes() {
		if n.KafkaAddr == "" || (n.ID != s.cfg.Self && !s.deps.Live.Alive(n.ID)) {
			continue
		}
		host, port, err := net.SplitHostPort(n.KafkaAddr)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			continue
		}
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = int32(n.ID), host, int32(p)
		resp.Brokers = append(resp.Brokers, b)
	}
	cluster := "walrus"
	resp.ClusterID = &cluster
	resp.ControllerID = int32(s.cfg.Self)
	var names []string
	if req.Topics == nil {
		for _, name := range s.deps.FSM.TopicNames() {
			if validTopic(name) == nil {
				names = append(names, name)
			}
		}
	} else {
		for _, t := range req.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			}
		}
	}
	for _, name := range names {
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = &name
		switch n := s.partitions(name); {
		case validTopic(name) != nil:
			rt.ErrorCode = kerr.InvalidTopicException.Code
		case n == 0 && req.AllowAutoTopicCreation && s.cfg.AutoCreateTopics:
			if err := s.createLogs(ctx, name, 0, 1, 0, -1); err != nil {
				rt.ErrorCode = kerr.LeaderNotAvailable.Code
			} else {
				s.fillPartitions(&rt, name, 1)
			}
		case n == 0:
			rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		default:
			s.fillPartitions(&rt, name, n)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func (s *Server) fillPartitions(rt *kmsg.MetadataResponseTopic, topic string, n int32) {
	for p := range n {
		rp := kmsg.NewMetadataResponseTopicPartition()
		rp.Partition, rp.LeaderEpoch = p, -1
		name := LogName(topic, p)
		r, ok := s.deps.FSM.Route(name)
		set, _, _ := s.deps.FSM.SegmentReplicas(name, r.Segment)
		if !ok || r.Leader == 0 || (r.Leader != s.cfg.Self && !s.deps.Live.Alive(r.Leader)) {
			rp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		rp.Leader = int32(r.Leader)
		for _, id := range set {
			rp.Replicas = append(rp.Replicas, int32(id))
			if id == s.cfg.Self || s.deps.Live.Alive(id) {
				rp.ISR = append(rp.ISR, int32(id))
			} else {
				rp.OfflineReplicas = append(rp.OfflineReplicas, int32(id))
			}
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
}

// createLogs creates partitions from..to-1 of topic (rf 0 and ack -1 take
// the node defaults) and waits until this node's metadata shows them, so
// the client's next Metadata here finds them.
func (s *Server) createLogs(ctx context.Context, topic string, from, to int32, rf, ack int) error {
	for p := from; p < to; p++ {
		if err := s.deps.Admin.CreateTopic(ctx, LogName(topic, p), rf, ack); err != nil {
			return fmt.Errorf("create partition %d of %s: %w", p, topic, err)
		}
	}
	for {
		changed := s.deps.FSM.Changed()
		if s.partitions(topic) >= to {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("create %s: this node did not apply the creation in time: %w", topic, ctx.Err())
		}
	}
}

// Topic configs understood by CreateTopics and shown by DescribeConfigs.
const (
	cfgRetentionMs      = "retention.ms"
	cfgRetentionBytes   = "retention.bytes"
	cfgRetentionEntries = "walrus.retention.entries"
	cfgMinISR           = "min.insync.replicas" // the topic's ack quorum
)

// topicSettings are a CreateTopics request's settings for one topic.
type topicSettings struct {
	rf, ack int
	alter   metadata.AlterTopic
}

func parseSettings(t *kmsg.CreateTopicsRequestTopic) (topicSettings, error) {
	st := topicSettings{rf: int(t.ReplicationFactor), ack: -1}
	if t.ReplicationFactor == -1 {
		st.rf = 0
	} else if t.ReplicationFactor < 1 || int(t.ReplicationFactor) > placement.MaxReplicationFactor {
		return st, fmt.Errorf("replication factor %d: must be 1..%d or -1 (default)", t.ReplicationFactor, placement.MaxReplicationFactor)
	}
	if len(t.ReplicaAssignment) > 0 {
		return st, errors.New("manual replica assignment is not supported: segments place their replicas themselves")
	}
	for _, c := range t.Configs {
		if c.Value == nil {
			continue
		}
		v, err := strconv.ParseInt(*c.Value, 10, 64)
		if err != nil {
			return st, fmt.Errorf("config %s=%q: not an integer", c.Name, *c.Value)
		}
		lim := uint64(max(v, 0)) // -1 (Kafka's "unlimited") is Walrus's 0
		switch c.Name {
		case cfgRetentionMs:
			ms := max(v, 0)
			st.alter.MaxAgeMs = &ms
		case cfgRetentionBytes:
			st.alter.MaxBytes = &lim
		case cfgRetentionEntries:
			st.alter.MaxEntries = &lim
		case cfgMinISR:
			if v < 1 {
				return st, fmt.Errorf("%s=%d: must be >= 1", cfgMinISR, v)
			}
			st.ack = int(v)
		default:
			return st, fmt.Errorf("config %s is not supported (supported: %s, %s, %s, %s)", c.Name, cfgRetentionMs, cfgRetentionBytes, cfgRetentionEntries, cfgMinISR)
		}
	}
	if st.ack > 0 && st.rf > 0 && st.ack > st.rf {
		return st, fmt.Errorf("%s=%d exceeds the replication factor %d", cfgMinISR, st.ack, st.rf)
	}
	return st, nil
}

func (s *Server) createTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) (*kmsg.CreateTopicsResponse, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		code, msg := s.createTopic(ctx, &t, req.ValidateOnly)
		rt.ErrorCode = code
		if msg != "" {
			rt.ErrorMessage = &msg
		}
		if code == 0 {
			rt.NumPartitions, rt.ReplicationFactor = s.partitions(t.Topic), t.ReplicationFactor
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func (s *Server) createTopic(ctx context.Context, t *kmsg.CreateTopicsRequestTopic, validateOnly bool) (int16, string) {
	if err := validTopic(t.Topic); err != nil {
		return kerr.InvalidTopicException.Code, err.Error()
	}
	n := t.NumPartitions
	if n == -1 {
		n = 1
	}
	if n < 1 || n > MaxPartitions {
		return kerr.InvalidPartitions.Code, fmt.Sprintf("%d partitions: must be 1..%d", n, MaxPartitions)
	}
	st, err := parseSettings(t)
	if err != nil {
		return kerr.InvalidConfig.Code, err.Error()
	}
	if s.partitions(t.Topic) > 0 {
		return kerr.TopicAlreadyExists.Code, fmt.Sprintf("topic %s already exists", t.Topic)
	}
	if validateOnly {
		return 0, ""
	}
	if err := s.createLogs(ctx, t.Topic, 0, n, st.rf, st.ack); err != nil {
		return kerr.UnknownServerError.Code, err.Error()
	}
	if err := s.alterAll(ctx, t.Topic, 0, n, st.alter); err != nil {
		return kerr.InvalidConfig.Code, err.Error()
	}
	return 0, ""
}

// alterAll applies retention settings to partitions from..to-1.
func (s *Server) alterAll(ctx context.Context, topic string, from, to int32, alter metadata.AlterTopic) error {
	if alter.MaxAgeMs == nil && alter.MaxBytes == nil && alter.MaxEntries == nil {
		return nil
	}
	for p := from; p < to; p++ {
		alter.Topic = LogName(topic, p)
		if err := s.deps.Admin.AlterTopic(ctx, alter); err != nil {
			return fmt.Errorf("set the retention of partition %d of %s: %w", p, topic, err)
		}
	}
	return nil
}

func (s *Server) deleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) (*kmsg.DeleteTopicsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	names := slices.Clone(req.TopicNames)
	for _, t := range req.Topics {
		if t.Topic != nil {
			names = append(names, *t.Topic)
		} else {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.TopicID, rt.ErrorCode = t.TopicID, kerr.UnknownTopicID.Code
			resp.Topics = append(resp.Topics, rt)
		}
	}
	for _, name := range names {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic = &name
		n := s.partitions(name)
		if validTopic(name) != nil || n == 0 {
			rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		// The highest partition first: a failure part-way leaves a
		// smaller topic, never a gap.
		for p := n - 1; p >= 0 && rt.ErrorCode == 0; p-- {
			if err := s.deps.Admin.DeleteTopic(ctx, LogName(name, p)); err != nil {
				msg := err.Error()
				rt.ErrorCode, rt.ErrorMessage = kerr.UnknownServerError.Code, &msg
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func (s *Server) createPartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest) (*kmsg.CreatePartitionsResponse, error) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		fail := func(code int16, format string, args ...any) {
			msg := fmt.Sprintf(format, args...)
			rt.ErrorCode, rt.ErrorMessage = code, &msg
		}
		n := s.partitions(t.Topic)
		switch {
		case validTopic(t.Topic) != nil || n == 0:
			fail(kerr.UnknownTopicOrPartition.Code, "unknown topic %s", t.Topic)
		case t.Count <= n || t.Count > MaxPartitions:
			fail(kerr.InvalidPartitions.Code, "topic %s has %d partitions: the new count %d must be more, and at most %d", t.Topic, n, t.Count, MaxPartitions)
		case len(t.Assignment) > 0:
			fail(kerr.InvalidReplicaAssignment.Code, "manual replica assignment is not supported")
		case req.ValidateOnly:
		default:
			// New partitions follow partition 0's replication settings
			// and retention.
			rf, ack := 0, -1
			var ret metadata.Retention
			if t0, ok := s.deps.FSM.Topic(t.Topic); ok {
				rf, ack, ret = t0.ReplicationFactor, t0.AckQuorum, t0.Retention
			}
			if err := s.createLogs(ctx, t.Topic, n, t.Count, rf, ack); err != nil {
				fail(kerr.UnknownServerError.Code, "%v", err)
			} else if err := s.alterAll(ctx, t.Topic, n, t.Count, metadata.AlterTopic{MaxAgeMs: ret.MaxAgeMs, MaxBytes: ret.MaxBytes, MaxEntries: ret.MaxEntries}); err != nil {
				fail(kerr.InvalidConfig.Code, "%v", err)
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
