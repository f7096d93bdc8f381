package kafka

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/kafka/kidem"
	"github.com/walrus-go/walrus/node/record"
)

// produceIdempotent stores an idempotent producer's batch once: kidem
// checks its sequence against what this log holds (rebuilding that from
// the log when this node starts a new segment) before it is appended.
func (s *Server) produceIdempotent(ctx context.Context, name string, seg uint64, recs []record.Keyed, stored [][]byte) (int64, int16, string) {
	b := kidem.Batch{Producer: recs[0].ProducerID, Epoch: recs[0].Epoch, First: recs[0].Sequence, Count: int32(min(len(recs), math.MaxInt32))}
	for i := range recs {
		r := &recs[i]
		if !r.Idempotent || r.ProducerID != b.Producer || r.Epoch != b.Epoch || r.Sequence != record.SeqAdd(b.First, int64(i)) {
			return -1, kerr.InvalidRecord.Code, "an idempotent produce holds one producer's records with consecutive sequences"
		}
	}
	out, err := s.idem.Begin(ctx, name, seg, b)
	if err != nil {
		s.deps.Logger.Debug("kafka idempotent produce: producer state not ready", "log", name, "err", err)
	}
	switch {
	case out.Code != 0: // DUPLICATE_SEQUENCE_NUMBER included: clients take it as stored
		return -1, out.Code, ""
	case out.Dup:
		return out.Base, 0, ""
	}
	base, code, msg := s.appendStored(ctx, name, stored)
	s.idem.Done(out.Ticket, base, code == 0)
	return base, code, msg
}

// initProducerID gives an idempotent producer a new id (epoch 0). A
// producer that had one (v3+, after a sequence error) gets a new id too:
// without transactions there is no epoch to fence.
func (s *Server) initProducerID(ctx context.Context, req *kmsg.InitProducerIDRequest) (*kmsg.InitProducerIDResponse, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = errUnsupportedVersion // transactions are not supported
		return resp, nil
	}
	id, err := s.pids.Next(ctx)
	if err != nil {
		s.deps.Logger.Warn("kafka InitProducerId failed", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
