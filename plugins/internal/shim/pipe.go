package shim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/walrus-go/walrus/engine"
	pb "github.com/walrus-go/walrus/plugins/proto/segmentstore/v1"
)

// Bounds of the AppendPipe fast path (see appender).
const (
	// pipeWorkers is how many AppendPipe requests may be in flight at once
	// (one stream each).
	pipeWorkers = 4
	// maxCoalesceBatches and maxCoalesceBytes bound one AppendPipe request:
	// how many queued appends a worker packs into it, and their payload.
	maxCoalesceBatches = 64
	maxCoalesceBytes   = 2 * ChunkBytes
	// appendQueueCap is how many small appends may wait for a worker.
	appendQueueCap = 1024
)

// errRetryAppend says the pipe path could not be used and nothing was sent
// that the plugin could have applied: retry with the Append RPC.
var errRetryAppend = errors.New("retry with Append")

// pending is one Append waiting for its result from a worker.
type pending struct {
	ctx   context.Context
	what  string
	batch *pb.AppendRequest
	size  int
	done  chan pipeResult // capacity 1: the worker never blocks on it
}

type pipeResult struct {
	first uint64
	err   error
}

// pipe is one AppendPipe stream, owned by one worker: one request in
// flight at a time. Its reader goroutine hands replies over and exits when
// the stream ends.
type pipe struct {
	stream  pb.SegmentStore_AppendPipeClient
	cancel  context.CancelFunc
	replies chan *pb.AppendPipeReply // capacity 1
	done    chan struct{}            // closed when the reader exits; err is set then
	err     error
	used    bool // a reply arrived (so the plugin has the method)
}

// appender is the small-append fast path of a Client: callers queue their
// batch; pipeWorkers goroutines each take what is queued (up to the
// coalescing bounds), send it as one AppendPipeRequest on their own stream
// and hand each caller its result. Under light load a request carries one
// batch and nothing waits; under concurrent load one round trip carries
// many appends (group commit across the process boundary).
type appender struct {
	c     *Client
	queue chan *pending
	stop  chan struct{}

	startOnce sync.Once
	wg        sync.WaitGroup // workers and pipe readers

	mu      sync.Mutex
	stopped bool
	open    map[*pipe]struct{}

	unsupported atomic.Bool // the plugin predates AppendPipe
	// Counters for tests: streams opened, requests sent, batches carried.
	opened, requests, batches atomic.Int64
}

func newAppender(c *Client) *appender {
	return &appender{c: c, queue: make(chan *pending, appendQueueCap), stop: make(chan struct{}), open: map[*pipe]struct{}{}}
}

// appendPiped runs one small Append through the workers. It returns
// errRetryAppend when the caller must use the Append RPC instead.
func (c *Client) appendPiped(ctx context.Context, what string, id engine.SegmentID, entries [][]byte, total uint64) (uint64, error) {
	a := c.appender
	if a.unsupported.Load() {
		return 0, errRetryAppend
	}
	a.startOnce.Do(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.stopped {
			return
		}
		for range pipeWorkers {
			a.wg.Add(1)
			go a.worker()
		}
	})
	pd := newPending(ctx, what, id, entries, total)
	select {
	case a.queue <- pd:
	case <-a.stop:
		return 0, fmt.Errorf("plugin: %s: %w", what, engine.ErrClosed)
	case <-ctx.Done():
		return 0, fmt.Errorf("plugin: %s: %w", what, ctx.Err())
	}
	select {
	case r := <-pd.done:
		return r.first, r.err
	case <-a.stop:
		// Closing: the append may or may not have been applied.
		return 0, fmt.Errorf("plugin: %s: %w", what, engine.ErrClosed)
	case <-ctx.Done():
		// The append may still be applied; like any cancelled call.
		return 0, fmt.Errorf("plugin: %s: %w", what, ctx.Err())
	}
}

// newPending packs one batch for the pipe.
func newPending(ctx context.Context, what string, id engine.SegmentID, entries [][]byte, total uint64) *pending {
	sizes := make([]uint32, len(entries))
	data := make([]byte, 0, total)
	for i, e := range entries {
		sizes[i] = uint32(len(e))
		data = append(data, e...)
	}
	return &pending{
		// size bounds the wire size: payload, up to 5 bytes per varint
		// length, the topic, and a little framing.
		ctx: ctx, what: what, size: int(total) + 5*len(entries) + len(id.Topic) + 64, done: make(chan pipeResult, 1),
		batch: &pb.AppendRequest{Id: toPBID(id), TotalEntries: uint64(len(entries)), TotalBytes: total, Sizes: sizes, Data: data},
	}
}

// takeGroup adds to first whatever is queued, within the coalescing bounds;
// carry is a taken pending that did not fit (it starts the next group).
func (a *appender) takeGroup(first *pending) (group []*pending, carry *pending) {
	group, size := []*pending{first}, first.size
	for len(group) < maxCoalesceBatches {
		select {
		case pd := <-a.queue:
			if size+pd.size > maxCoalesceBytes {
				return group, pd
			}
			group, size = append(group, pd), size+pd.size
		default:
			return group, nil
		}
	}
	return group, nil
}

// close stops the workers, ends every stream and fails what is queued.
func (a *appender) close() {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	a.stopped = true
	close(a.stop)
	for p := range a.open {
		p.cancel()
	}
	a.mu.Unlock()
	a.wg.Wait()
	for {
		select {
		case pd := <-a.queue:
			pd.done <- pipeResult{err: fmt.Errorf("plugin: %s: %w", pd.what, engine.ErrClosed)}
		default:
			return
		}
	}
}

func (a *appender) worker() {
	defer a.wg.Done()
	var p *pipe
	defer func() {
		if p != nil {
			a.drop(p)
		}
	}()
	var carry *pending
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case <-a.stop:
				return
			case first = <-a.queue:
			}
		}
		var group []*pending
		group, carry = a.takeGroup(first)
		live := group[:0]
		for _, pd := range group {
			if err := pd.ctx.Err(); err != nil {
				pd.done <- pipeResult{err: fmt.Errorf("plugin: %s: %w", pd.what, err)}
				continue
			}
			live = append(live, pd)
		}
		if len(live) == 0 {
			continue
		}
		if p == nil {
			var err error
			if p, err = a.openPipe(); err != nil {
				for _, pd := range live {
					pd.done <- pipeResult{err: fromStatus(pd.ctx, pd.what, err)}
				}
				continue
			}
		}
		p = a.roundTrip(p, live)
	}
}

// openPipe opens one AppendPipe stream and starts its reader.
func (a *appender) openPipe() (*pipe, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return nil, fmt.Errorf("append pipe: %w", engine.ErrClosed)
	}
	// The stream outlives any one call: its own context, cancelled when the
	// pipe is dropped or the client closes.
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := a.c.rpc.AppendPipe(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	p := &pipe{stream: stream, cancel: cancel, replies: make(chan *pb.AppendPipeReply, 1), done: make(chan struct{})}
	a.open[p] = struct{}{}
	a.opened.Add(1)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
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

func (a *appender) drop(p *pipe) {
	p.cancel()
	a.mu.Lock()
	delete(a.open, p)
	a.mu.Unlock()
}

// roundTrip sends one request and delivers its results. It returns the pipe
// if it is still usable, nil if it was dropped.
func (a *appender) roundTrip(p *pipe, group []*pending) *pipe {
	req := &pb.AppendPipeRequest{Batches: make([]*pb.AppendRequest, len(group))}
	for i, pd := range group {
		req.Batches[i] = pd.batch
	}
	failAll := func(err func(pd *pending) error) {
		for _, pd := range group {
			pd.done <- pipeResult{err: err(pd)}
		}
	}
	a.requests.Add(1)
	a.batches.Add(int64(len(group)))
	if err := p.stream.Send(req); err != nil {
		// io.EOF: the stream already ended; the reader has the real error.
		<-p.done
		a.broken(p, group)
		return nil
	}
	timer := time.NewTimer(a.c.opts.CallTimeout)
	defer timer.Stop()
	select {
	case reply := <-p.replies:
		p.used = true
		if len(reply.GetReplies()) != len(group) {
			a.drop(p)
			failAll(func(pd *pending) error {
				return fmt.Errorf("plugin: %s: reply carries %d results for %d batches: %w", pd.what, len(reply.GetReplies()), len(group), engine.ErrUnavailable)
			})
			return nil
		}
		for i, r := range reply.GetReplies() {
			if r.GetError() != nil {
				group[i].done <- pipeResult{err: fromPBError(r.GetError())}
				continue
			}
			group[i].done <- pipeResult{first: r.GetFirst()}
		}
		return p
	case <-p.done:
		a.broken(p, group)
		return nil
	case <-timer.C:
		a.drop(p)
		failAll(func(pd *pending) error {
			return fmt.Errorf("plugin: %s: no reply within %v: %w", pd.what, a.c.opts.CallTimeout, engine.ErrUnavailable)
		})
		return nil
	case <-a.stop:
		a.drop(p)
		failAll(func(pd *pending) error { return fmt.Errorf("plugin: %s: %w", pd.what, engine.ErrClosed) })
		return nil
	}
}

// broken handles a pipe whose stream ended: a plugin without AppendPipe
// switches the client to the Append RPC (nothing was applied); anything
// else is a transport failure.
func (a *appender) broken(p *pipe, group []*pending) {
	a.drop(p)
	if !p.used && status.Code(p.err) == codes.Unimplemented {
		a.unsupported.Store(true)
		for _, pd := range group {
			pd.done <- pipeResult{err: errRetryAppend}
		}
		return
	}
	for _, pd := range group {
		pd.done <- pipeResult{err: fromStatus(pd.ctx, pd.what, p.err)}
	}
}
