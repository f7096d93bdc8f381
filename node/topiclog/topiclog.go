// Package topiclog reads a topic as a log from any node: topic-wide
// offsets (the sealed counts of earlier segments plus the offset inside a
// segment), the readable range, non-destructive fetches across segments,
// and the search by time. Sealed segments are read from any replica that
// holds them (this node first, then live members); the open segment from
// its leader, which bounds it to what the ack quorum holds, so a reader
// never sees an entry the cluster could still drop.
package topiclog

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/metrics"
	"github.com/walrus-go/walrus/node/record"
	"github.com/walrus-go/walrus/node/wire"
)

// Holder is one node's side of segment fetches (a wire.Client, or this
// node's segment part).
type Holder interface {
	Fetch(ctx context.Context, req *wire.FetchRequest) (*wire.FetchReply, error)
}

// Local reads this node's own store of a segment up to a bound another
// node vouched for (the open segment's leader: what its ack quorum holds).
type Local interface {
	ReadStored(ctx context.Context, topic string, seg, off uint64, limit, maxBytes int, upto uint64) ([][]byte, error)
}

// Liveness judges whether a node is up.
type Liveness interface {
	Alive(id uint64) bool
}

// Deps are the parts the log reader uses.
type Deps struct {
	Self    uint64
	FSM     *metadata.FSM
	Peer    func(id uint64) Holder
	Local   Local
	Live    Liveness
	Metrics *metrics.Metrics
}

// Log reads topics as logs.
type Log struct{ Deps }

// New builds the log reader.
func New(d Deps) *Log { return &Log{Deps: d} }

// RangeError reports an offset outside the readable range.
type RangeError struct {
	Topic            string
	Offset           uint64
	Earliest, Latest uint64
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("offset out of range (earliest %d, latest %d)", e.Earliest, e.Latest)
}

// ErrOutOfRange matches every *RangeError.
var ErrOutOfRange = errors.New("offset out of range")

func (e *RangeError) Is(target error) bool { return target == ErrOutOfRange }

func unknown(topic string) error { return fmt.Errorf("%w %s", wire.ErrUnknownTopic, topic) }

// Offsets returns the readable range of a topic: entries earliest..latest-1.
func (l *Log) Offsets(ctx context.Context, topic string) (earliest, latest uint64, err error) {
	var r metadata.Route
	if !l.FSM.View(topic, func(t *metadata.Topic) {
		r = metadata.Route{Segment: t.CurrentSegment, Leader: t.LeaderNode, SealedOffset: t.SealedOffset}
		earliest = t.Earliest
	}) {
		return 0, 0, unknown(topic)
	}
	rep, err := l.fetchOpen(ctx, topic, r, 0, 0, 0)
	if err != nil {
		return 0, 0, err
	}
	return earliest, r.SealedOffset + rep.Readable, nil
}

// Fetch returns up to limit entries from offset on, about maxBytes of
// payload at most (at least one entry when one is readable), in offset
// order across segments, and the offset after the last one. It returns no
// entries at latest and a *RangeError outside earliest..latest.
func (l *Log) Fetch(ctx context.Context, topic string, off uint64, limit, maxBytes int) ([]record.Entry, uint64, error) {
	out := make([]record.Entry, 0, min(limit, 1024))
	budget := maxBytes
	for len(out) < limit && budget > 0 {
		var p place
		if !l.FSM.View(topic, func(t *metadata.Topic) { p = locate(t, off) }) {
			return nil, off, unknown(topic)
		}
		if p.below {
			if len(out) > 0 {
				break // retention deleted the rest of the page meanwhile
			}
			e, latest, err := l.Offsets(ctx, topic)
			if err != nil {
				return nil, off, err
			}
			return nil, off, &RangeError{Topic: topic, Offset: off, Earliest: e, Latest: latest}
		}
		want := uint32(min(uint64(limit-len(out)), p.left))
		if p.sealed {
			rep, err := l.fetchSealed(ctx, topic, p, want, budget)
			if err != nil || len(rep.Entries) == 0 {
				if len(out) > 0 {
					break // hand out what was read; the next FETCH reports it
				}
				if err == nil {
					err = fmt.Errorf("topic %s segment %d: no replica returned entries at %d: %w", topic, p.seg, p.segOff, wire.ErrSegmentUnavailable)
				}
				return nil, off, err
			}
			n, b, err := appendEntries(&out, rep.Entries, off, p.timed)
			if err != nil {
				return nil, off, fmt.Errorf("topic %s segment %d: %w", topic, p.seg, err)
			}
			off += uint64(n)
			budget -= b
			continue
		}
		rep, err := l.readOpen(ctx, topic, p, want, budget)
		if err != nil {
			if len(out) > 0 {
				break
			}
			return nil, off, err
		}
		if rep.Sealed && len(rep.Entries) == 0 && len(out) == 0 && p.segOff >= rep.Readable {
			// The leader sealed it and this node's metadata does not know
			// the next segment yet: a retry after it catches up reads on.
			return nil, off, &wire.NotLeaderError{Topic: topic, Segment: p.seg, Leader: p.holders[0]}
		}
		if len(rep.Entries) == 0 && len(out) == 0 && p.segOff > rep.Readable {
			return nil, off, &RangeError{Topic: topic, Offset: off, Earliest: p.earliest, Latest: p.start + rep.Readable}
		}
		if _, _, err := appendEntries(&out, rep.Entries, off, p.timed); err != nil {
			return nil, off, fmt.Errorf("topic %s segment %d: %w", topic, p.seg, err)
		}
		off += uint64(len(rep.Entries))
		break // the open segment is the end of what this metadata knows
	}
	return out, off, nil
}

// place is where a topic-wide offset lives, copied out of the metadata.
type place struct {
	seg, segOff uint64
	start       uint64 // topic-wide offset of the segment's entry 0
	sealed      bool
	left        uint64 // entries of a sealed segment from segOff on (max for the open one)
	timed       bool
	holders     []uint64 // replica set (leader first)
	below       bool     // off is below the earliest retained offset
	earliest    uint64
}

func locate(t *metadata.Topic, off uint64) place {
	if off < t.Earliest {
		return place{below: true}
	}
	seg, segOff := t.Locate(off)
	p := place{seg: seg, segOff: segOff, start: off - segOff, timed: t.Timed(seg), left: ^uint64(0), earliest: t.Earliest}
	if count, sealed := t.SealedSegments[seg]; sealed {
		p.sealed, p.left = true, count-segOff
		p.holders = slices.Clone(t.SegmentReplicas(seg))
	} else {
		p.holders = slices.Clone(t.SegmentReplicas(seg))
	}
	return p
}

// readOpen reads the open segment. A replica of it asks the leader only
// for the bound (what the ack quorum holds) and reads its own copy below
// it: the entries below the bound are the same on every replica that has
// them, and the page does not cross the network twice.
func (l *Log) readOpen(ctx context.Context, topic string, p place, want uint32, budget int) (*wire.FetchReply, error) {
	r := metadata.Route{Segment: p.seg, Leader: p.holders[0], SealedOffset: p.start}
	if r.Leader == l.Self || l.Local == nil || !slices.Contains(p.holders, l.Self) {
		return l.fetchOpen(ctx, topic, r, p.segOff, want, budget)
	}
	rep, err := l.fetchOpen(ctx, topic, r, p.segOff, 0, 0)
	if err != nil || p.segOff >= rep.Readable {
		return rep, err
	}
	entries, err := l.Local.ReadStored(ctx, topic, p.seg, p.segOff, int(want), budget, rep.Readable)
	if err != nil || len(entries) == 0 {
		// Behind the leader (or failing): read through it.
		return l.fetchOpen(ctx, topic, r, p.segOff, want, budget)
	}
	rep.Entries = entries
	return rep, nil
}

func appendEntries(out *[]record.Entry, stored [][]byte, off uint64, timed bool) (int, int, error) {
	b := 0
	for i, s := range stored {
		ts, p, err := record.Decode(s, timed)
		if err != nil {
			return 0, 0, fmt.Errorf("offset %d: %w", off+uint64(i), err)
		}
		e := record.Entry{Offset: off + uint64(i), Time: ts, Payload: p}
		if timed {
			e.Stored = s
		}
		*out = append(*out, e)
		b += len(p)
	}
	return len(stored), b, nil
}

// fetchOpen reads the open segment r names from its leader.
func (l *Log) fetchOpen(ctx context.Context, topic string, r metadata.Route, segOff uint64, limit uint32, maxBytes int) (*wire.FetchReply, error) {
	req := &wire.FetchRequest{Topic: topic, Segment: r.Segment, Offset: segOff, Max: limit, MaxBytes: uint32(max(maxBytes, 1))}
	rep, err := l.Peer(r.Leader).Fetch(ctx, req)
	if r.Leader != l.Self {
		l.Metrics.ObserveForward("read", err)
	}
	if err != nil {
		return nil, fmt.Errorf("read topic %s segment %d from its leader, node %d: %w", topic, r.Segment, r.Leader, err)
	}
	return rep, nil
}

// fetchSealed reads a sealed segment from the first replica that returns
// entries: this node, then live members, then the others.
func (l *Log) fetchSealed(ctx context.Context, topic string, p place, limit uint32, maxBytes int) (*wire.FetchReply, error) {
	set, seg := p.holders, p.seg
	cands := make([]uint64, 0, len(set))
	if slices.Contains(set, l.Self) {
		cands = append(cands, l.Self)
	}
	for _, live := range []bool{true, false} {
		for _, id := range set {
			if id != l.Self && l.Live.Alive(id) == live {
				cands = append(cands, id)
			}
		}
	}
	req := &wire.FetchRequest{Topic: topic, Segment: seg, Offset: p.segOff, Max: limit, MaxBytes: uint32(max(maxBytes, 1))}
	var errs []error
	for _, id := range cands {
		rep, err := l.Peer(id).Fetch(ctx, req)
		if id != l.Self {
			l.Metrics.ObserveForward("read", err)
		}
		if err == nil && len(rep.Entries) > 0 {
			// A holder whose metadata lags may not know the seal yet; the
			// count this node knows bounds the read either way.
			if len(rep.Entries) > int(limit) {
				rep.Entries = rep.Entries[:limit]
			}
			return rep, nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", id, err))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("read topic %s segment %d: %w: %w", topic, seg, wire.ErrSegmentUnavailable, errors.Join(errs...))
	}
	return &wire.FetchReply{Sealed: true}, nil
}

// Seek returns the first offset whose time is at or after ts (Unix ms),
// or latest when there is none. Times never decrease along a topic, so
// it searches by halves, reading one entry per probe.
func (l *Log) Seek(ctx context.Context, topic string, ts int64) (uint64, error) {
	lo, hi, err := l.Offsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		entries, _, err := l.Fetch(ctx, topic, mid, 1, 1)
		if err != nil {
			return 0, err
		}
		if len(entries) == 0 {
			return 0, fmt.Errorf("seek %s: no entry at offset %d: %w", topic, mid, wire.ErrSegmentUnavailable)
		}
		if entries[0].Time >= ts {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// TimeBefore returns the time of the last entry before segment seg (0 when
// there is none, it is untimed, or it cannot be read): the floor of the
// times a new segment leader stamps.
func (l *Log) TimeBefore(ctx context.Context, topic string, seg uint64) int64 {
	t, ok := l.FSM.Topic(topic)
	if !ok {
		return 0
	}
	start, ok := t.SegmentStart(seg)
	if !ok || start == 0 {
		return 0
	}
	entries, _, err := l.Fetch(ctx, topic, start-1, 1, 1)
	if err != nil || len(entries) == 0 {
		return 0
	}
	return entries[0].Time
}

// TimeAt returns the time of the entry at a topic-wide offset.
func (l *Log) TimeAt(ctx context.Context, topic string, off uint64) (int64, error) {
	entries, _, err := l.Fetch(ctx, topic, off, 1, 1)
	if err != nil {
		return 0, err
	}
	if len(entries) == 0 {
		return 0, fmt.Errorf("topic %s: no entry at offset %d: %w", topic, off, wire.ErrSegmentUnavailable)
	}
	return entries[0].Time, nil
}
