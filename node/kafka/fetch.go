package kafka

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/kafka/kbatch"
	"github.com/walrus-go/walrus/node/record"
	"github.com/walrus-go/walrus/node/topiclog"
	"github.com/walrus-go/walrus/node/wire"
)

// Bounds of a fetch.
const (
	maxFetchEntries = 8192
	maxFetchBytes   = 64 << 20
	maxWait         = 25 * time.Second // under requestTimeout
	// pollInterval is how often a long poll looks again for records
	// (and at every metadata change).
	pollInterval = 20 * time.Millisecond
)

// fetch reads each partition from its fetch offset, only what the ack
// quorum holds (topiclog), as one v2 batch per partition; it waits up to
// max_wait_ms until min_bytes are there.
func (s *Server) fetch(ctx context.Context, req *kmsg.FetchRequest) (*kmsg.FetchResponse, error) {
	deadline := time.Now().Add(min(time.Duration(max(req.MaxWaitMillis, 0))*time.Millisecond, maxWait))
	for {
		changed := s.deps.FSM.Changed()
		resp, got := s.fetchOnce(ctx, req)
		wait := time.Until(deadline)
		if got >= int(req.MinBytes) || wait <= 0 || ctx.Err() != nil {
			return resp, nil
		}
		t := time.NewTimer(min(wait, pollInterval))
		select {
		case <-t.C:
		case <-changed:
		case <-ctx.Done():
		}
		t.Stop()
	}
}

func (s *Server) fetchOnce(ctx context.Context, req *kmsg.FetchRequest) (*kmsg.FetchResponse, int) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	budget := int(req.MaxBytes)
	if budget <= 0 || budget > maxFetchBytes {
		budget = maxFetchBytes
	}
	total := 0
	for _, t := range req.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewFetchResponseTopicPartition()
			// Empty, not null: librdkafka refuses a null record set.
			rp.Partition, rp.RecordBatches = p.Partition, []byte{}
			pmax := min(int(p.PartitionMaxBytes), budget)
			if p.PartitionMaxBytes <= 0 {
				pmax = budget
			}
			s.fetchPartition(ctx, t.Topic, p.FetchOffset, pmax, total == 0, &rp)
			n := len(rp.RecordBatches)
			total += n
			budget = max(budget-n, 0)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, total
}

// fetchPartition fills rp. The first partition with records returns at
// least one record even past maxBytes, as Kafka does, so a large record
// never stalls a consumer.
func (s *Server) fetchPartition(ctx context.Context, topic string, off int64, maxBytes int, first bool, rp *kmsg.FetchResponseTopicPartition) {
	name, code := s.partitionLog(topic, rp.Partition)
	if code != 0 {
		rp.ErrorCode = code
		return
	}
	earliest, latest, err := s.deps.Log.Offsets(ctx, name)
	if err != nil {
		rp.ErrorCode = readErrCode(err)
		return
	}
	rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = int64(latest), int64(latest), int64(earliest)
	if off < int64(earliest) || off > int64(latest) {
		rp.ErrorCode = kerr.OffsetOutOfRange.Code
		return
	}
	if off == int64(latest) || (maxBytes <= 0 && !first) {
		return
	}
	entries, _, err := s.deps.Log.Fetch(ctx, name, uint64(off), maxFetchEntries, max(maxBytes, 1))
	if err != nil {
		if errors.Is(err, topiclog.ErrOutOfRange) {
			rp.ErrorCode = kerr.OffsetOutOfRange.Code
		} else {
			rp.ErrorCode = readErrCode(err)
		}
		return
	}
	ks, err := keyed(entries)
	if err != nil {
		s.deps.Logger.Error("kafka fetch: stored entry does not decode", "topic", name, "err", err)
		rp.ErrorCode = kerr.CorruptMessage.Code
		return
	}
	if len(ks) > 0 {
		rp.RecordBatches = kbatch.Encode(nil, ks)
	}
}

// keyed decodes entries as Kafka records (natively written ones have a
// null key, no headers and their append time as timestamp).
func keyed(entries []record.Entry) ([]kbatch.Entry, error) {
	out := make([]kbatch.Entry, len(entries))
	for i, e := range entries {
		out[i].Off = e.Offset
		if e.Stored == nil {
			out[i].K = record.Keyed{Timestamp: e.Time, Value: e.Payload}
			continue
		}
		_, k, err := record.DecodeKeyed(e.Stored)
		if err != nil {
			return nil, err
		}
		out[i].K = k
	}
	return out, nil
}

// partitionLog resolves a partition to its log, or the error code.
func (s *Server) partitionLog(topic string, part int32) (string, int16) {
	if validTopic(topic) != nil || part < 0 || part >= MaxPartitions {
		return "", kerr.UnknownTopicOrPartition.Code
	}
	name := LogName(topic, part)
	if _, ok := s.deps.FSM.Route(name); !ok {
		return "", kerr.UnknownTopicOrPartition.Code
	}
	return name, 0
}

func readErrCode(err error) int16 {
	var nl *wire.NotLeaderError
	switch {
	case errors.Is(err, wire.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.As(err, &nl), errors.Is(err, wire.ErrSegmentUnavailable):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}

// listOffsets answers earliest (-2), latest (-1), and by time t: the
// first offset whose producer timestamp is >= t (Kafka's meaning), or
// latest with timestamp -1 when there is none.
func (s *Server) listOffsets(ctx context.Context, req *kmsg.ListOffsetsRequest) (*kmsg.ListOffsetsResponse, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition, rp.Timestamp, rp.Offset = p.Partition, -1, -1
			name, code := s.partitionLog(t.Topic, p.Partition)
			if code == 0 {
				rp.Offset, rp.Timestamp, code = s.offsetFor(ctx, name, p.Timestamp)
			}
			rp.ErrorCode = code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func (s *Server) offsetFor(ctx context.Context, name string, ts int64) (int64, int64, int16) {
	earliest, latest, err := s.deps.Log.Offsets(ctx, name)
	if err != nil {
		return -1, -1, readErrCode(err)
	}
	switch {
	case ts == -2:
		return int64(earliest), -1, 0
	case ts == -1:
		return int64(latest), -1, 0
	case ts < 0:
		return -1, -1, kerr.UnsupportedVersion.Code
	}
	// Producer timestamps need not grow along the log (the append time
	// does), so the search reads the log in order from the earliest
	// offset: exact, and linear in the records before the answer.
	off := earliest
	for off < latest {
		entries, next, err := s.deps.Log.Fetch(ctx, name, off, maxFetchEntries, 4<<20)
		if err != nil {
			return -1, -1, readErrCode(err)
		}
		ks, err := keyed(entries)
		if err != nil {
			return -1, -1, kerr.CorruptMessage.Code
		}
		for _, k := range ks {
			if k.K.Timestamp >= ts {
				return int64(k.Off), k.K.Timestamp, 0
			}
		}
		if len(entries) == 0 || next <= off {
			break
		}
		off = next
	}
	return int64(latest), -1, 0
}
