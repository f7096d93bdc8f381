package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/walrus-go/walrus/engine"
	pb "github.com/walrus-go/walrus/plugins/proto/segmentstore/v1"
)

// DefaultCallTimeout is the deadline given to a call whose ctx has none, so
// a wedged plugin cannot hang the host forever.
const DefaultCallTimeout = 30 * time.Second

// ClientOptions tune a Client. The zero value is usable.
type ClientOptions struct {
	// CallTimeout is the deadline applied to calls whose ctx has none
	// (default DefaultCallTimeout).
	CallTimeout time.Duration
	// Limits bound what the host accepts back from the plugin: a Read
	// result's single entry may be at most MaxEntryBytes; the zero value
	// means engine.DefaultLimits().
	Limits engine.Limits
	// NoSharedMemory keeps appends off the shared ring even when the
	// plugin offers it (frames on the data channel socket instead).
	NoSharedMemory bool
}

// Client implements engine.SegmentStore by calling a plugin's Server.
// Every error it returns is an engine error: the plugin's own (rebuilt so
// errors.Is holds), ctx.Err() when the caller gave up, or
// engine.ErrUnavailable when the plugin could not be reached.
type Client struct {
	rpc      pb.SegmentStoreClient
	opts     ClientOptions
	closed   atomic.Bool
	appender *appender
	data     dataState
}

var _ engine.SegmentStore = (*Client)(nil)

// NewClient returns a store that calls the plugin behind conn. The caller
// owns conn.
func NewClient(conn grpc.ClientConnInterface, opts ClientOptions) *Client {
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.Limits == (engine.Limits{}) {
		opts.Limits = engine.DefaultLimits()
	}
	c := &Client{rpc: pb.NewSegmentStoreClient(conn), opts: opts}
	c.appender = newAppender(c)
	return c
}

// begin checks the client is open and bounds ctx with the call timeout.
func (c *Client) begin(ctx context.Context, what string) (context.Context, context.CancelFunc, error) {
	if c.closed.Load() {
		return nil, nil, fmt.Errorf("plugin: %s: %w", what, engine.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("plugin: %s: %w", what, err)
	}
	if _, ok := ctx.Deadline(); ok {
		ctx, cancel := context.WithCancel(ctx)
		return ctx, cancel, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.CallTimeout)
	return ctx, cancel, nil
}

func toPBID(id engine.SegmentID) *pb.SegmentID {
	return &pb.SegmentID{Topic: id.Topic, Segment: id.Segment}
}

func fromPBInfo(info *pb.SegmentInfo) engine.SegmentInfo {
	return engine.SegmentInfo{
		ID:      fromPBID(info.GetId()),
		Entries: info.GetEntries(),
		Bytes:   info.GetBytes(),
		Sealed:  info.GetSealed(),
	}
}

// Append sends the batch in chunks and returns the first offset.
func (c *Client) Append(ctx context.Context, id engine.SegmentID, entries [][]byte) (uint64, error) {
	what := "append " + id.String()
	ctx, cancel, err := c.begin(ctx, what)
	if err != nil {
		return 0, err
	}
	defer cancel()
	var total uint64
	for _, e := range entries {
		total += uint64(len(e))
	}
	if total <= ChunkBytes && len(entries) <= chunkSizesMax {
		if requestFrameFits(id.Topic, entries, total) {
			if dc := c.dataChannel(ctx); dc != nil {
				switch {
				case dc.shm == nil:
					return dc.append(ctx, what, id, entries)
				case shmFrameFits(id.Topic, entries, total):
					return dc.shmAppend(ctx, what, id, entries)
				}
				// Larger than a ring slot: AppendPipe below.
			}
		}
		first, err := c.appendPiped(ctx, what, id, entries, total)
		if !errors.Is(err, errRetryAppend) {
			return first, err
		}
	}
	stream, err := c.rpc.Append(ctx)
	if err != nil {
		return 0, fromStatus(ctx, what, err)
	}
	first := true
	ch := newChunker(int(total), func(sizes []uint32, data []byte) error {
		msg := &pb.AppendRequest{Sizes: sizes, Data: data}
		if first {
			msg.Id, msg.TotalEntries, msg.TotalBytes = toPBID(id), uint64(len(entries)), total
			first = false
		}
		return stream.Send(msg)
	})
	sendErr := func() error {
		for _, e := range entries {
			if err := ch.add(e); err != nil {
				return err
			}
		}
		return ch.close()
	}()
	if sendErr != nil && !errors.Is(sendErr, io.EOF) {
		if errors.Is(sendErr, engine.ErrInvalidArgument) {
			return 0, fmt.Errorf("plugin: %s: %w", what, sendErr)
		}
		return 0, fromStatus(ctx, what, sendErr)
	}
	// io.EOF from Send means the server already answered (typically an
	// error); CloseAndRecv returns that answer.
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return 0, fromStatus(ctx, what, err)
	}
	return resp.GetFirst(), nil
}

// Read streams one Read result back and rebuilds the entries, refusing a
// result that breaks the read bounds before allocating it.
func (c *Client) Read(ctx context.Context, id engine.SegmentID, offset uint64, maxEntries int, maxBytes int) ([][]byte, error) {
	what := fmt.Sprintf("read %s@%d", id, offset)
	ctx, cancel, err := c.begin(ctx, what)
	if err != nil {
		return nil, err
	}
	defer cancel()
	if shmReadFits(id.Topic) {
		if dc := c.dataChannel(ctx); dc != nil && dc.shm != nil {
			entries, ok, err := dc.shmRead(ctx, what, id, offset, maxEntries, maxBytes, uint64(c.opts.Limits.MaxEntryBytes))
			if ok {
				return entries, err
			}
			// Larger than a slot: the gRPC stream below chunks it.
		}
	}
	stream, err := c.rpc.Read(ctx, &pb.ReadRequest{
		Id: toPBID(id), Offset: offset, MaxEntries: int64(maxEntries), MaxBytes: int64(maxBytes),
	})
	if err != nil {
		return nil, fromStatus(ctx, what, err)
	}
	msg, err := stream.Recv()
	if err != nil {
		return nil, fromStatus(ctx, what, err)
	}
	// A result may exceed maxBytes only when it is one entry (the
	// at-least-one rule), and that entry is bounded by MaxEntryBytes.
	budget := uint64(max(maxBytes, 0))
	if msg.GetTotalEntries() == 1 {
		budget = max(budget, uint64(c.opts.Limits.MaxEntryBytes))
	}
	asm, err := newAssembler(msg.GetTotalEntries(), msg.GetTotalBytes(), uint64(max(maxEntries, 0)), budget)
	if err != nil {
		return nil, fmt.Errorf("plugin: %s: result breaks the read contract: %v: %w", what, err, engine.ErrCorrupt)
	}
	for {
		if err := asm.add(msg.GetSizes(), msg.GetData()); err != nil {
			return nil, fmt.Errorf("plugin: %s: %v: %w", what, err, engine.ErrCorrupt)
		}
		msg, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fromStatus(ctx, what, err)
		}
	}
	entries, err := asm.finish()
	if err != nil {
		return nil, fmt.Errorf("plugin: %s: %v: %w", what, err, engine.ErrCorrupt)
	}
	return entries, nil
}

// Seal seals one segment.
func (c *Client) Seal(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	what := "seal " + id.String()
	ctx, cancel, err := c.begin(ctx, what)
	if err != nil {
		return engine.SegmentInfo{}, err
	}
	defer cancel()
	resp, err := c.rpc.Seal(ctx, &pb.SealRequest{Id: toPBID(id)})
	if err != nil {
		return engine.SegmentInfo{}, fromStatus(ctx, what, err)
	}
	return fromPBInfo(resp.GetInfo()), nil
}

// Stat reports one segment.
func (c *Client) Stat(ctx context.Context, id engine.SegmentID) (engine.SegmentInfo, error) {
	what := "stat " + id.String()
	ctx, cancel, err := c.begin(ctx, what)
	if err != nil {
		return engine.SegmentInfo{}, err
	}
	defer cancel()
	resp, err := c.rpc.Stat(ctx, &pb.StatRequest{Id: toPBID(id)})
	if err != nil {
		return engine.SegmentInfo{}, fromStatus(ctx, what, err)
	}
	return fromPBInfo(resp.GetInfo()), nil
}

// List collects the pages of the segment list.
func (c *Client) List(ctx context.Context, topic string) ([]engine.SegmentInfo, error) {
	what := fmt.Sprintf("list %q", topic)
	ctx, cancel, err := c.begin(ctx, what)
	if err != nil {
		return nil, err
	}
	defer cancel()
	stream, err := c.rpc.List(ctx, &pb.ListRequest{Topic: topic})
	if err != nil {
		return nil, fromStatus(ctx, what, err)
	}
	var out []engine.SegmentInfo
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fromStatus(ctx, what, err)
		}
		for _, info := range msg.GetInfos() {
			out = append(out, fromPBInfo(info))
		}
	}
	if out == nil {
		out = []engine.SegmentInfo{}
	}
	return out, nil
}

// Delete removes one segment.
func (c *Client) Delete(ctx context.Context, id engine.SegmentID) error {
	what := "delete " + id.String()
	ctx, cancel, err := c.begin(ctx, what)
	if err != nil {
		return err
	}
	defer cancel()
	_, err = c.rpc.Delete(ctx, &pb.DeleteRequest{Id: toPBID(id)})
	return fromStatus(ctx, what, err)
}

// Sync asks the plugin to make every acknowledged append durable.
func (c *Client) Sync(ctx context.Context) error {
	ctx, cancel, err := c.begin(ctx, "sync")
	if err != nil {
		return err
	}
	defer cancel()
	_, err = c.rpc.Sync(ctx, &pb.SyncRequest{})
	return fromStatus(ctx, "sync", err)
}

// Close asks the plugin to close its store (flushing it), ends the append
// pipes and marks the client closed; later calls fail with engine.ErrClosed
// without a round trip. Idempotent: only the first call reaches the plugin.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	defer c.appender.close()
	defer c.closeData(false)
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.CallTimeout)
	defer cancel()
	_, err := c.rpc.Close(ctx, &pb.CloseRequest{})
	return fromStatus(ctx, "close", err)
}

// Release ends the client's streams and goroutines without calling the
// plugin, for a plugin that is already gone (it also removes the data
// channel socket the dead plugin left behind). Later calls fail with
// engine.ErrClosed.
func (c *Client) Release() {
	c.closed.Store(true)
	c.closeData(true)
	c.appender.close()
}
