package shim

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/walrus-go/walrus/engine"
	pb "github.com/walrus-go/walrus/plugins/proto/segmentstore/v1"
)

// maxIdlePipes bounds the AppendPipe streams kept open between calls; more
// concurrent appenders open extra pipes and close them afterwards.
const maxIdlePipes = 32

// pipe is one AppendPipe stream, used by one Append at a time. Its reader
// goroutine hands each reply over and exits when the stream ends.
type pipe struct {
	stream  pb.SegmentStore_AppendPipeClient
	cancel  context.CancelFunc
	replies chan *pb.AppendReply // capacity 1: at most one request in flight
	done    chan struct{}        // closed when the reader exits; err is set then
	err     error
	used    bool // a reply arrived at least once (so the plugin has the method)
}

// pipes owns every open pipe of a Client.
type pipes struct {
	idle chan *pipe // capacity maxIdlePipes
	wg   sync.WaitGroup

	mu          sync.Mutex
	closed      bool
	open        map[*pipe]struct{}
	unsupported bool // the plugin predates AppendPipe: use Append only
}

func newPipes() *pipes {
	return &pipes{idle: make(chan *pipe, maxIdlePipes), open: map[*pipe]struct{}{}}
}

// get returns an idle pipe or opens one; nil (and no error) means "use the
// Append RPC instead".
func (ps *pipes) get(c *Client) (*pipe, error) {
	select {
	case p := <-ps.idle:
		return p, nil
	default:
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed || ps.unsupported {
		return nil, nil
	}
	// The stream outlives any one call: its own context, cancelled when the
	// pipe is dropped or the client closes.
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := c.rpc.AppendPipe(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	p := &pipe{stream: stream, cancel: cancel, replies: make(chan *pb.AppendReply, 1), done: make(chan struct{})}
	ps.open[p] = struct{}{}
	ps.wg.Add(1)
	go func() {
		defer ps.wg.Done()
		defer close(p.done)
		for {
			reply, err := stream.Recv()
			if err != nil {
				p.err = err
				return
			}
			p.replies <- reply
		}
	}()
	return p, nil
}

// put returns a healthy pipe to the idle set, or drops it when that is full.
func (ps *pipes) put(p *pipe) {
	select {
	case ps.idle <- p:
	default:
		ps.drop(p)
	}
}

// drop ends a pipe: its stream is cancelled and its reader exits.
func (ps *pipes) drop(p *pipe) {
	p.cancel()
	ps.mu.Lock()
	delete(ps.open, p)
	ps.mu.Unlock()
}

// close ends every pipe and waits for their readers.
func (ps *pipes) close() {
	ps.mu.Lock()
	ps.closed = true
	for p := range ps.open {
		p.cancel()
	}
	ps.open = map[*pipe]struct{}{}
	ps.mu.Unlock()
	ps.wg.Wait()
}

// errRetryAppend says the pipe path could not be used and nothing was sent
// that the plugin could have applied: retry with the Append RPC.
var errRetryAppend = errors.New("retry with Append")

// appendPiped sends one small batch on a pipe and waits for its reply.
func (c *Client) appendPiped(ctx context.Context, what string, id engine.SegmentID, entries [][]byte, total uint64) (uint64, error) {
	p, err := c.pipes.get(c)
	if err != nil {
		return 0, fromStatus(ctx, what, err)
	}
	if p == nil {
		return 0, errRetryAppend
	}
	sizes := make([]uint32, len(entries))
	data := make([]byte, 0, total)
	for i, e := range entries {
		sizes[i] = uint32(len(e))
		data = append(data, e...)
	}
	req := &pb.AppendRequest{Id: toPBID(id), TotalEntries: uint64(len(entries)), TotalBytes: total, Sizes: sizes, Data: data}
	if err := p.stream.Send(req); err != nil {
		// Send reports io.EOF when the stream already ended; the reader
		// has the real error.
		<-p.done
		return 0, c.pipeBroken(ctx, what, p)
	}
	select {
	case reply := <-p.replies:
		p.used = true
		c.pipes.put(p)
		if reply.GetError() != nil {
			return 0, fromPBError(reply.GetError())
		}
		return reply.GetFirst(), nil
	case <-p.done:
		return 0, c.pipeBroken(ctx, what, p)
	case <-ctx.Done():
		// The reply may still come; the pipe cannot be reused. Like any
		// cancelled call, the append may or may not have been applied.
		c.pipes.drop(p)
		return 0, fmt.Errorf("plugin: %s: %w", what, ctx.Err())
	}
}

// pipeBroken handles a pipe whose stream ended: a plugin without
// AppendPipe switches the client to the Append RPC (nothing was applied);
// anything else is a transport failure.
func (c *Client) pipeBroken(ctx context.Context, what string, p *pipe) error {
	c.pipes.drop(p)
	if !p.used && status.Code(p.err) == codes.Unimplemented {
		c.pipes.mu.Lock()
		c.pipes.unsupported = true
		c.pipes.mu.Unlock()
		return errRetryAppend
	}
	return fromStatus(ctx, what, p.err)
}
