// Package ktxn answers Kafka's transactional APIs, which Walrus does not
// support: every answer is UNSUPPORTED_VERSION (not a closed connection),
// per partition where the response has partitions.
package ktxn

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var unsupported = kerr.UnsupportedVersion.Code

// AddPartitionsToTxn refuses every partition.
func AddPartitionsToTxn(_ context.Context, r *kmsg.AddPartitionsToTxnRequest) (*kmsg.AddPartitionsToTxnResponse, error) {
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	resp.ErrorCode = unsupported
	for _, tp := range r.Topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = tp.Topic
		for _, p := range tp.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, unsupported
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// AddOffsetsToTxn refuses.
func AddOffsetsToTxn(_ context.Context, r *kmsg.AddOffsetsToTxnRequest) (*kmsg.AddOffsetsToTxnResponse, error) {
	resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	resp.ErrorCode = unsupported
	return resp, nil
}

// EndTxn refuses.
func EndTxn(_ context.Context, r *kmsg.EndTxnRequest) (*kmsg.EndTxnResponse, error) {
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ErrorCode = unsupported
	return resp, nil
}

// TxnOffsetCommit refuses every partition.
func TxnOffsetCommit(_ context.Context, r *kmsg.TxnOffsetCommitRequest) (*kmsg.TxnOffsetCommitResponse, error) {
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, tp := range r.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = tp.Topic
		for _, p := range tp.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, unsupported
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
