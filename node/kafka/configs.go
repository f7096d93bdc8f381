package kafka

import (
	"context"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/metadata"
)

// describeConfigs shows a topic's settings (those of partition 0, which
// every partition shares) in Kafka's names; a broker has none to show.
func (s *Server) describeConfigs(_ context.Context, req *kmsg.DescribeConfigsRequest) (*kmsg.DescribeConfigsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, r := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		switch r.ResourceType {
		case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		case kmsg.ConfigResourceTypeTopic:
			t, ok := s.deps.FSM.Topic(r.ResourceName)
			if validTopic(r.ResourceName) != nil || !ok {
				rr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			for _, c := range s.topicConfigs(&t) {
				if r.ConfigNames == nil || slices.Contains(r.ConfigNames, c.Name) {
					rr.Configs = append(rr.Configs, c)
				}
			}
		default:
			rr.ErrorCode = kerr.InvalidRequest.Code
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}

func (s *Server) topicConfigs(t *metadata.Topic) []kmsg.DescribeConfigsResponseResourceConfig {
	lim := t.Retention.Effective(s.cfg.DefaultRetention)
	unlimited := func(v int64) string {
		if v <= 0 {
			return "-1"
		}
		return strconv.FormatInt(v, 10)
	}
	ack := t.SegmentAckQuorum(t.CurrentSegment)
	set := []struct {
		name, value string
		own         bool // set on the topic (not a default)
		readOnly    bool
		kind        kmsg.ConfigType
	}{
		{cfgRetentionMs, unlimited(lim.MaxAgeMs), t.Retention.MaxAgeMs != nil, false, kmsg.ConfigTypeLong},
		{cfgRetentionBytes, unlimited(int64(lim.MaxBytes)), t.Retention.MaxBytes != nil, false, kmsg.ConfigTypeLong},
		{cfgRetentionEntries, unlimited(int64(lim.MaxEntries)), t.Retention.MaxEntries != nil, false, kmsg.ConfigTypeLong},
		{cfgMinISR, strconv.Itoa(ack), t.AckQuorum != 0, true, kmsg.ConfigTypeInt},
		{"cleanup.policy", "delete", false, true, kmsg.ConfigTypeList},
		{"message.timestamp.type", "CreateTime", false, true, kmsg.ConfigTypeString},
	}
	out := make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(set))
	for _, c := range set {
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		v := c.value
		rc.Name, rc.Value, rc.ReadOnly, rc.ConfigType = c.name, &v, c.readOnly, c.kind
		rc.IsDefault = !c.own
		rc.Source = kmsg.ConfigSourceDefaultConfig
		if c.own {
			rc.Source = kmsg.ConfigSourceDynamicTopicConfig
		}
		out = append(out, rc)
	}
	return out
}
