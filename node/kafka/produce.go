package kafka

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/kafka/kbatch"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/record"
	"github.com/walrus-go/walrus/node/wire"
)

// produce stores each partition's batches on its log's open segment, led
// here. acks=0 gets no response; acks=1 and acks=-1 both answer once the
// topic's ack quorum holds the records (this node never acknowledges
// less than the quorum).
func (s *Server) produce(ctx context.Context, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	if req.TransactionID != nil {
		for _, t := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.TransactionalIDAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return s.ackResponse(req, resp), nil
	}
	if req.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, min(time.Duration(req.TimeoutMillis)*time.Millisecond, requestTimeout))
		defer cancel()
	}
	for _, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			base, code, msg := s.producePartition(ctx, t.Topic, p.Partition, p.Records)
			rp.ErrorCode, rp.BaseOffset = code, base
			if msg != "" {
				rp.ErrorMessage = &msg
			}
			rp.LogAppendTime = -1 // records keep the producer's timestamp (CreateTime)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return s.ackResponse(req, resp), nil
}

func (s *Server) ackResponse(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse) kmsg.Response {
	if req.Acks == 0 {
		return nil
	}
	return resp
}

// producePartition stores one partition's records and returns the offset
// of the first one.
func (s *Server) producePartition(ctx context.Context, topic string, part int32, batches []byte) (int64, int16, string) {
	if err := validTopic(topic); err != nil || part < 0 || part >= MaxPartitions {
		return -1, kerr.UnknownTopicOrPartition.Code, ""
	}
	name := LogName(topic, part)
	rt, ok := s.deps.FSM.Route(name)
	if !ok {
		return -1, kerr.UnknownTopicOrPartition.Code, ""
	}
	if rt.Leader != s.cfg.Self {
		return -1, kerr.NotLeaderForPartition.Code, ""
	}
	if !s.deps.FSM.Timed(name, rt.Segment) {
		return -1, kerr.UnsupportedForMessageFormat.Code, "this topic's open segment predates records with times; write Kafka records to a new topic"
	}
	recs, err := kbatch.Decode(batches, s.cfg.MaxRequestBytes)
	if err != nil {
		s.deps.Logger.Debug("kafka produce refused", "topic", topic, "partition", part, "err", err)
		if errors.Is(err, kbatch.ErrUnsupported) {
			return -1, kerr.UnsupportedForMessageFormat.Code, err.Error()
		}
		return -1, kerr.CorruptMessage.Code, err.Error()
	}
	if len(recs) == 0 {
		return -1, kerr.InvalidRecord.Code, "no records"
	}
	// One buffer for all records; the segment writer stamps their append
	// time in place.
	size := 0
	for i := range recs {
		size += record.KeyedSize(&recs[i])
	}
	buf := make([]byte, 0, size)
	stored := make([][]byte, len(recs))
	for i := range recs {
		start := len(buf)
		buf = record.AppendKeyed(buf, 0, &recs[i])
		stored[i] = buf[start:len(buf):len(buf)]
	}
	if recs[0].Idempotent {
		return s.produceIdempotent(ctx, name, rt.Segment, recs, stored)
	}
	return s.appendStored(ctx, name, stored)
}

// appendStored appends encoded records to the open segment of log name
// and returns the offset of the first.
func (s *Server) appendStored(ctx context.Context, name string, stored [][]byte) (int64, int16, string) {
	base := int64(-1)
	for len(stored) > 0 {
		n := min(len(stored), wire.MaxAppendEntries)
		seg, first, err := s.deps.Append.AppendRecords(ctx, name, stored[:n])
		if err != nil {
			return -1, appendErrCode(err), err.Error()
		}
		if base < 0 {
			var start uint64
			var found bool
			s.deps.FSM.View(name, func(t *metadata.Topic) { start, found = t.SegmentStart(seg) })
			if !found {
				return -1, kerr.UnknownServerError.Code, "the segment appended to is gone from the metadata"
			}
			base = int64(start + first)
		}
		stored = stored[n:]
	}
	return base, 0, ""
}

// appendErrCode maps an append failure to the code that makes a Kafka
// client do the right thing: refresh metadata and retry on a moved or
// fenced segment, retry later on a full disk.
func appendErrCode(err error) int16 {
	var nl *wire.NotLeaderError
	var df *wire.DiskFullError
	switch {
	case errors.As(err, &nl), errors.Is(err, wire.ErrFenced), errors.Is(err, wire.ErrUnknownTopic):
		return kerr.NotLeaderForPartition.Code
	case errors.As(err, &df):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, wire.ErrShuttingDown):
		return kerr.NotLeaderForPartition.Code
	}
	return kerr.UnknownServerError.Code
}
