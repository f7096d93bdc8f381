package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/kafka/kbatch"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/record"
)

// fakes: a node whose metadata knows topic "t" (led here) and whose parts
// fail or answer empty, so every API's decoding and checks run.
type fakeLog struct{}

func (fakeLog) Offsets(context.Context, string) (uint64, uint64, error) { return 0, 0, nil }
func (fakeLog) Fetch(context.Context, string, uint64, int, int) ([]record.Entry, uint64, error) {
	return nil, 0, nil
}

type fakeAppend struct{}

func (fakeAppend) AppendRecords(_ context.Context, _ string, recs [][]byte) (uint64, uint64, error) {
	for _, r := range recs {
		if _, _, err := record.DecodeKeyed(r); err != nil {
			return 0, 0, err // the fuzzer found a record the listener should have refused
		}
	}
	return 0, 0, errors.New("fake append")
}

func (fakeAppend) Count(context.Context, string, uint64) (uint64, error) { return 0, nil }

type fakeAdmin struct{}

func (fakeAdmin) CreateTopic(context.Context, string, int, int) error   { return errors.New("fake") }
func (fakeAdmin) DeleteTopic(context.Context, string) error             { return errors.New("fake") }
func (fakeAdmin) AlterTopic(context.Context, metadata.AlterTopic) error { return errors.New("fake") }
func (fakeAdmin) AllocProducerIDs(context.Context, uint64) error        { return errors.New("fake") }

type fakeLive struct{}

func (fakeLive) Alive(uint64) bool { return true }

func fuzzServer() *Server {
	fsm := metadata.NewFSM()
	fsm.ApplyCommand(metadata.UpsertNode{Node: metadata.Node{ID: 1, KafkaAddr: "127.0.0.1:9092"}})
	fsm.ApplyCommand(metadata.CreateTopic{Topic: "t", Leader: 1, Replicas: []uint64{1}, Timed: true})
	return New(Config{Self: 1}, Deps{FSM: fsm, Log: fakeLog{}, Append: fakeAppend{}, Admin: fakeAdmin{}, Live: fakeLive{}})
}

func seedRequest(req kmsg.Request) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = append(b, 0, 0, 0, 1, 0xff, 0xff)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

// FuzzHandle feeds request bodies through header parsing, kmsg decoding,
// dispatch and every handler: nothing panics, and a response that is
// sent is framed.
func FuzzHandle(f *testing.F) {
	batch := kbatch.Encode(nil, []kbatch.Entry{{K: record.Keyed{Timestamp: 1, Key: []byte("k"), Value: []byte("v")}}})
	prod := kmsg.NewPtrProduceRequest()
	prod.Version, prod.Acks = 9, -1
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = batch
	pt.Partitions = append(pt.Partitions, pp)
	prod.Topics = append(prod.Topics, pt)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 12
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	ft.Partitions = append(ft.Partitions, kmsg.NewFetchRequestTopicPartition())
	fetch.Topics = append(fetch.Topics, ft)
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 12
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 6
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "t"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = 3
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 7
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "n", 2, -1
	ct.Topics = append(ct.Topics, ctt)
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Version = 4
	dcr := kmsg.NewDescribeConfigsRequestResource()
	dcr.ResourceType, dcr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
	dc.Resources = append(dc.Resources, dcr)
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	for _, r := range []kmsg.Request{prod, fetch, meta, lo, ct, dc, av} {
		f.Add(seedRequest(r))
	}
	s := fuzzServer()
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) < 8 {
			return
		}
		// Fetch's long poll would wait: cap the wait in the request.
		ctx, cancel := context.WithTimeout(context.Background(), 0)
		defer cancel()
		out, err := s.handle(ctx, body, nil)
		if err == nil && len(out) > 0 && int(binary.BigEndian.Uint32(out)) != len(out)-4 {
			t.Fatalf("response frame of %d bytes says %d", len(out), binary.BigEndian.Uint32(out))
		}
	})
}

// FuzzDecodeBatches: a produced batch either decodes into records that
// store and read back, or is refused; never a panic.
func FuzzDecodeBatches(f *testing.F) {
	f.Add(kbatch.Encode(nil, []kbatch.Entry{{K: record.Keyed{Timestamp: 1, Key: []byte("k"), Value: []byte("v"), Headers: []record.Header{{Key: []byte("h")}}}}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := kbatch.Decode(b, 1<<20)
		if err != nil {
			return
		}
		for i := range recs {
			if _, _, err := record.DecodeKeyed(record.AppendKeyed(nil, 1, &recs[i])); err != nil {
				t.Fatalf("record %d does not read back: %v", i, err)
			}
		}
	})
}
