package kidem

import (
	"context"
	"fmt"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/record"
)

// Log reads a partition log from any node (topiclog.Log).
type Log interface {
	Offsets(ctx context.Context, topic string) (earliest, latest uint64, err error)
	Fetch(ctx context.Context, topic string, off uint64, limit, maxBytes int) ([]record.Entry, uint64, error)
}

// LogSource is the Source of a node: its logs, read from any node, and
// the open segments it leads.
type LogSource struct {
	Log    Log
	Routes interface {
		Route(topic string) (metadata.Route, bool)
	}
	Counts interface {
		Count(ctx context.Context, topic string, seg uint64) (uint64, error)
	}
	Self uint64
}

// Scan reads the idempotent records (record.Version3) of the last
// RebuildRecords entries of log name.
func (s LogSource) Scan(ctx context.Context, name string) ([]Record, error) {
	earliest, latest, err := s.Log.Offsets(ctx, name)
	if err != nil {
		return nil, err
	}
	from := earliest
	if latest > RebuildRecords {
		from = max(from, latest-RebuildRecords)
	}
	var out []Record
	for off := from; off < latest; {
		entries, next, err := s.Log.Fetch(ctx, name, off, 8192, 8<<20)
		if err != nil {
			return nil, fmt.Errorf("kafka: rebuild producer state of %s from offset %d: %w", name, off, err)
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			if len(e.Stored) == 0 || e.Stored[0] != record.Version3 {
				continue
			}
			_, k, err := record.DecodeKeyed(e.Stored)
			if err != nil {
				return nil, fmt.Errorf("kafka: rebuild producer state of %s: offset %d: %w", name, e.Offset, err)
			}
			out = append(out, Record{Producer: k.ProducerID, Epoch: k.Epoch, Seq: k.Sequence, Offset: int64(e.Offset)})
		}
		off = next
	}
	return out, nil
}

// Settled reports whether every entry this node appended to segment seg
// of log name is readable; false once the segment moved on (the next
// batch rebuilds for the new one).
func (s LogSource) Settled(ctx context.Context, name string, seg uint64) (bool, error) {
	rt, ok := s.Routes.Route(name)
	if !ok || rt.Segment != seg || rt.Leader != s.Self {
		return false, nil
	}
	n, err := s.Counts.Count(ctx, name, seg)
	if err != nil {
		return false, err
	}
	_, latest, err := s.Log.Offsets(ctx, name)
	if err != nil {
		return false, err
	}
	return rt.SealedOffset+n == latest, nil
}
