package shim

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/walrus-go/walrus/engine"
	pb "github.com/walrus-go/walrus/plugins/proto/segmentstore/v1"
)

// dataRetryInterval is how long the client waits before trying to open the
// data channel again after a failure (it uses AppendPipe meanwhile).
const dataRetryInterval = time.Second

// dataClient is the host end of one data channel connection: callers write
// whole request frames (serialised by wmu) and wait for the reader to hand
// them their response by id.
type dataClient struct {
	conn net.Conn
	w    frameWriter

	mu      sync.Mutex
	pending map[uint64]chan dcResponse
	nextID  uint64
	err     error         // set once, when the connection fails
	done    chan struct{} // closed with err
	wg      sync.WaitGroup

	// frames recycles request frame buffers. Without it every append
	// allocated its frame (13 KB for 128 x 100 B), and the host's profile
	// was dominated by the garbage: the scavenger's madvise and yields took
	// ~45% of its CPU in BenchmarkAppend.
	frames chan []byte

	// shm is set when the connection carries appends through a shared
	// ring (shm_client.go); the socket then only carries wake-ups.
	shm *shmHost
}

const (
	// dcFramesPooled bounds how many frame buffers a connection keeps.
	dcFramesPooled = 16
	// dcFramePooledBytesMax is the largest buffer kept; a rare large batch
	// (up to a chunk) does not pin a megabyte per pooled slot.
	dcFramePooledBytesMax = 256 << 10
)

func (dc *dataClient) getFrame() []byte {
	select {
	case b := <-dc.frames:
		return b
	default:
		return nil
	}
}

// putFrame returns a buffer once nothing refers to it: frameWriter.write
// copies a frame it queues, so the caller's buffer is free when it returns.
func (dc *dataClient) putFrame(b []byte) {
	if cap(b) > dcFramePooledBytesMax {
		return
	}
	select {
	case dc.frames <- b[:0]:
	default:
	}
}

// dataState is the Client's lazily opened data channel.
type dataState struct {
	mu          sync.Mutex
	dc          *dataClient
	unsupported bool // the plugin predates OpenDataChannel
	closed      bool
	failedAt    time.Time
	addr        string // the socket the plugin last offered
}

// dataChannel returns a live data channel, opening one if needed, or nil
// when appends must take the gRPC path.
func (c *Client) dataChannel(ctx context.Context) *dataClient {
	s := &c.data
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.unsupported {
		return nil
	}
	if s.dc != nil {
		select {
		case <-s.dc.done:
			s.dc.wait()
			s.dc, s.failedAt = nil, time.Now()
		default:
			return s.dc
		}
	}
	if time.Since(s.failedAt) < dataRetryInterval {
		return nil
	}
	dc, addr, err := c.openData(ctx)
	if addr != "" {
		s.addr = addr
	}
	if err != nil {
		if status.Code(err) == codes.Unimplemented {
			s.unsupported = true
		}
		s.failedAt = time.Now()
		return nil
	}
	s.dc = dc
	return dc
}

func (c *Client) openData(ctx context.Context) (*dataClient, string, error) {
	offerShm := shmSupported && !c.opts.NoSharedMemory
	callCtx := ctx
	if offerShm {
		callCtx = metadata.AppendToOutgoingContext(ctx, shmMetadataKey, shmMetadataValue)
	}
	var header metadata.MD
	resp, err := c.rpc.OpenDataChannel(callCtx, &pb.OpenDataChannelRequest{}, grpc.Header(&header))
	if err != nil {
		return nil, "", err
	}
	if resp.GetNetwork() != "unix" || len(resp.GetToken()) != tokenBytes {
		return nil, "", fmt.Errorf("data channel: unsupported %q address or token", resp.GetNetwork())
	}
	addr := resp.GetAddress()
	if offerShm && slices.Contains(header.Get(shmMetadataKey), shmMetadataValue) {
		conn, err := dialData(ctx, addr)
		if err != nil {
			return nil, addr, err
		}
		dc, err := openShm(ctx, conn, resp.GetToken())
		if err == nil {
			return dc, addr, nil
		}
		// The plugin offered the ring but could not map it (or a limit
		// differs): carry on with frames on the socket.
		_ = conn.Close()
	}
	conn, err := dialData(ctx, addr)
	if err != nil {
		return nil, addr, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
	}
	if _, err := conn.Write(resp.GetToken()); err != nil {
		_ = conn.Close()
		return nil, addr, err
	}
	dc := &dataClient{conn: conn, w: frameWriter{conn: conn}, pending: map[uint64]chan dcResponse{}, done: make(chan struct{}), frames: make(chan []byte, dcFramesPooled)}
	dc.wg.Add(1)
	go dc.readLoop()
	return dc, addr, nil
}

func dialData(ctx context.Context, addr string) (net.Conn, error) {
	var dialer net.Dialer
	return dialer.DialContext(ctx, "unix", addr)
}

// SharedMemory reports whether appends currently travel through a shared
// ring (false before the first append, with an older plugin, on other
// operating systems, and while the data channel is down).
func (c *Client) SharedMemory() bool {
	s := &c.data
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dc == nil || s.dc.shm == nil {
		return false
	}
	select {
	case <-s.dc.done:
		return false
	default:
		return true
	}
}

// closeData ends the data channel for good (Client Close/Release). With
// removeSocket (the plugin is known to be dead) it also removes the socket
// directory the plugin could not clean up itself.
func (c *Client) closeData(removeSocket bool) {
	s := &c.data
	s.mu.Lock()
	s.closed = true
	dc, addr := s.dc, s.addr
	s.dc = nil
	s.mu.Unlock()
	if dc != nil {
		dc.fail(fmt.Errorf("client closed"))
		dc.wait()
	}
	// Only ever a directory the SDK created (see startDataServer).
	if dir := filepath.Dir(addr); removeSocket && addr != "" && strings.HasPrefix(filepath.Base(dir), dataDirPrefix) {
		_ = os.RemoveAll(dir)
	}
}

// wait waits for the reader and, for a ring, for every caller before it
// unmaps the ring. Call it after fail.
func (dc *dataClient) wait() {
	dc.wg.Wait()
	if dc.shm != nil {
		dc.shm.waitAndUnmap()
	}
}

// fail marks the connection broken (once), wakes every waiting caller and
// closes the socket, which ends the reader.
func (dc *dataClient) fail(err error) {
	dc.mu.Lock()
	if dc.err == nil {
		dc.err = err
		close(dc.done)
		clear(dc.pending)
	}
	dc.mu.Unlock()
	_ = dc.conn.Close()
}

func (dc *dataClient) readLoop() {
	defer dc.wg.Done()
	br := bufio.NewReaderSize(dc.conn, 64<<10)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			dc.fail(err)
			return
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n > maxResponseFrameBytes {
			dc.fail(fmt.Errorf("%w: response of %d bytes", errFrame, n))
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			dc.fail(err)
			return
		}
		resp, err := decodeResponse(body)
		if err != nil {
			dc.fail(err)
			return
		}
		dc.mu.Lock()
		ch := dc.pending[resp.id]
		delete(dc.pending, resp.id)
		dc.mu.Unlock()
		if ch != nil {
			ch <- resp // capacity 1, one response per id
		}
	}
}

// append sends one batch and waits for its result. A broken channel is
// ErrUnavailable: the plugin may or may not have applied the batch.
func (dc *dataClient) append(ctx context.Context, what string, id engine.SegmentID, entries [][]byte) (uint64, error) {
	ch := make(chan dcResponse, 1)
	dc.mu.Lock()
	if dc.err != nil {
		err := dc.err
		dc.mu.Unlock()
		return 0, fmt.Errorf("plugin: %s: %w: data channel: %v", what, engine.ErrUnavailable, err)
	}
	dc.nextID++
	reqID := dc.nextID
	dc.pending[reqID] = ch
	dc.mu.Unlock()

	frame := appendRequestFrame(dc.getFrame(), reqID, id.Topic, id.Segment, entries)
	werr := dc.w.write(frame, func(c net.Conn) {
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetWriteDeadline(dl)
		}
	})
	dc.putFrame(frame)
	if werr != nil {
		dc.fail(werr)
		return 0, fmt.Errorf("plugin: %s: %w: data channel: %v", what, engine.ErrUnavailable, werr)
	}
	select {
	case r := <-ch:
		return dataResult(r)
	case <-dc.done:
		select {
		case r := <-ch: // answered just before the channel broke
			return dataResult(r)
		default:
		}
		return 0, fmt.Errorf("plugin: %s: %w: data channel: %v", what, engine.ErrUnavailable, dc.err)
	case <-ctx.Done():
		dc.mu.Lock()
		delete(dc.pending, reqID)
		dc.mu.Unlock()
		return 0, fmt.Errorf("plugin: %s: %w", what, ctx.Err())
	}
}

func dataResult(r dcResponse) (uint64, error) {
	if r.ok {
		return r.first, nil
	}
	return 0, remoteError(codes.Code(r.code), r.reason, r.message)
}
