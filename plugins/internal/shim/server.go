package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/walrus-go/walrus/engine"
	pb "github.com/walrus-go/walrus/plugins/proto/segmentstore/v1"
)

// listPage is how many SegmentInfos one List message carries (each is at
// most ~300 bytes, so a page stays far below the message limit).
const listPage = 4096

// Server serves a SegmentStore over gRPC. It checks everything the peer
// announces against Limits before allocating, then hands the call to the
// store, which enforces the contract (the server does not second-guess it).
type Server struct {
	pb.UnimplementedSegmentStoreServer
	store  engine.SegmentStore
	limits engine.Limits

	dataMu      sync.Mutex
	data        *dataServer // started by the first OpenDataChannel
	dataStopped bool
	noShm       bool // set before serving: never offer the shared ring
}

var _ pb.SegmentStoreServer = (*Server)(nil)

// NewServer wraps store. limits bound what one Append may announce; the zero
// value means engine.DefaultLimits().
func NewServer(store engine.SegmentStore, limits engine.Limits) *Server {
	if limits == (engine.Limits{}) {
		limits = engine.DefaultLimits()
	}
	return &Server{store: store, limits: limits}
}

// DisableSharedMemory makes the server decline the shared ring, as a plugin
// built before it did: appends are framed on the data channel socket.
// Call it before serving.
func (s *Server) DisableSharedMemory() { s.noShm = true }

func fromPBID(id *pb.SegmentID) engine.SegmentID {
	return engine.SegmentID{Topic: id.GetTopic(), Segment: id.GetSegment()}
}

func toPBInfo(info engine.SegmentInfo) *pb.SegmentInfo {
	return &pb.SegmentInfo{
		Id:      &pb.SegmentID{Topic: info.ID.Topic, Segment: info.ID.Segment},
		Entries: info.Entries,
		Bytes:   info.Bytes,
		Sealed:  info.Sealed,
	}
}

func invalid(format string, args ...any) error {
	return toStatus(fmt.Errorf("shim: "+format+": %w", append(args, engine.ErrInvalidArgument)...))
}

// Append receives the chunks of one batch, then appends it in one call.
func (s *Server) Append(stream pb.SegmentStore_AppendServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err // the client went away; nothing to answer
	}
	if first.GetId() == nil {
		return invalid("append: first chunk names no segment")
	}
	id := fromPBID(first.GetId())
	// Announced bytes over MaxBatchBytes are refused before allocating; the
	// store would refuse the batch anyway.
	asm, err := newAssembler(first.GetTotalEntries(), first.GetTotalBytes(), MaxBatchEntries, uint64(s.limits.MaxBatchBytes))
	if err != nil {
		return invalid("append %s: %v", id, err)
	}
	msg := first
	for {
		if err := asm.add(msg.GetSizes(), msg.GetData()); err != nil {
			return invalid("append %s: %v", id, err)
		}
		msg, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	entries, err := asm.finish()
	if err != nil {
		return invalid("append %s: %v", id, err)
	}
	firstOffset, err := s.store.Append(stream.Context(), id, entries)
	if err != nil {
		return toStatus(err)
	}
	return stream.SendAndClose(&pb.AppendResponse{First: firstOffset})
}

// MaxPipeBatches bounds the batches of one AppendPipe request.
const MaxPipeBatches = 256

// AppendPipe serves the small-batch fast path: each request carries one or
// more whole batches, applied concurrently (they are concurrent appends
// the host coalesced), and gets one reply with a result per batch, in
// order. A store error goes back in its result and the stream carries on;
// a malformed request ends the stream with InvalidArgument.
func (s *Server) AppendPipe(stream pb.SegmentStore_AppendPipeServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		batches := req.GetBatches()
		if len(batches) == 0 || len(batches) > MaxPipeBatches {
			return invalid("append pipe: %d batches in one request, want 1..%d", len(batches), MaxPipeBatches)
		}
		ids := make([]engine.SegmentID, len(batches))
		entries := make([][][]byte, len(batches))
		for i, b := range batches {
			if ids[i], entries[i], err = s.decodeWhole(b); err != nil {
				return err
			}
		}
		replies := make([]*pb.AppendReply, len(batches))
		apply := func(i int) {
			first, err := s.store.Append(stream.Context(), ids[i], entries[i])
			if err != nil {
				replies[i] = &pb.AppendReply{Error: toPBError(err)}
				return
			}
			replies[i] = &pb.AppendReply{First: first}
		}
		if len(batches) == 1 {
			apply(0)
		} else {
			// Concurrently, so a store with group commit shares one fsync
			// among them as it would among concurrent calls in process.
			var wg sync.WaitGroup
			for i := range batches {
				wg.Go(func() { apply(i) })
			}
			wg.Wait()
		}
		if err := stream.Send(&pb.AppendPipeReply{Replies: replies}); err != nil {
			return err
		}
	}
}

// decodeWhole checks and splits a batch that travels in one message.
func (s *Server) decodeWhole(b *pb.AppendRequest) (engine.SegmentID, [][]byte, error) {
	if b.GetId() == nil {
		return engine.SegmentID{}, nil, invalid("append pipe: batch names no segment")
	}
	id := fromPBID(b.GetId())
	asm, err := newAssembler(b.GetTotalEntries(), b.GetTotalBytes(), MaxBatchEntries, uint64(s.limits.MaxBatchBytes))
	if err == nil {
		err = asm.add(b.GetSizes(), b.GetData())
	}
	var entries [][]byte
	if err == nil {
		entries, err = asm.finish()
	}
	if err != nil {
		return id, nil, invalid("append pipe %s: %v", id, err)
	}
	return id, entries, nil
}

// Read runs one store Read and streams its result in chunks.
func (s *Server) Read(req *pb.ReadRequest, stream pb.SegmentStore_ReadServer) error {
	if req.GetId() == nil {
		return invalid("read: no segment")
	}
	maxEntries, maxBytes := req.GetMaxEntries(), req.GetMaxBytes()
	if maxEntries > math.MaxInt32 {
		maxEntries = math.MaxInt32
	}
	if maxEntries > MaxBatchEntries {
		maxEntries = MaxBatchEntries // the host would refuse more in one result
	}
	if maxBytes > math.MaxInt {
		maxBytes = math.MaxInt
	}
	entries, err := s.store.Read(stream.Context(), fromPBID(req.GetId()), req.GetOffset(), int(maxEntries), int(maxBytes))
	if err != nil {
		return toStatus(err)
	}
	var total uint64
	for _, e := range entries {
		total += uint64(len(e))
	}
	first := true
	ch := newChunker(int(total), func(sizes []uint32, data []byte) error {
		msg := &pb.ReadResponse{Sizes: sizes, Data: data}
		if first {
			msg.TotalEntries, msg.TotalBytes = uint64(len(entries)), total
			first = false
		}
		return stream.Send(msg)
	})
	for _, e := range entries {
		if err := ch.add(e); err != nil {
			return toStatus(err)
		}
	}
	return ch.close()
}

// OpenDataChannel starts the data channel (once) and tells the host where
// it is and which token to present.
//
// A host that offers the shared ring (metadata shmMetadataKey) gets it
// echoed in the response header when this build can map it; it then passes
// the ring with its token (shm_server.go).
func (s *Server) OpenDataChannel(ctx context.Context, _ *pb.OpenDataChannelRequest) (*pb.OpenDataChannelResponse, error) {
	s.dataMu.Lock()
	defer s.dataMu.Unlock()
	if s.dataStopped {
		return nil, toStatus(fmt.Errorf("shim: data channel: %w", engine.ErrClosed))
	}
	if shmSupported && !s.noShm {
		if md, ok := metadata.FromIncomingContext(ctx); ok && slices.Contains(md.Get(shmMetadataKey), shmMetadataValue) {
			// Fails only if the response was sent already; then the
			// host simply does not see the offer.
			_ = grpc.SetHeader(ctx, metadata.Pairs(shmMetadataKey, shmMetadataValue))
		}
	}
	if s.data == nil {
		d, err := startDataServer(s.store, shmSupported && !s.noShm)
		if err != nil {
			return nil, toStatus(fmt.Errorf("shim: %v: %w", err, engine.ErrUnavailable))
		}
		s.data = d
	}
	return &pb.OpenDataChannelResponse{Network: "unix", Address: s.data.address(), Token: s.data.token}, nil
}

// Stop ends the data channel (its connections and in-flight appends) and
// removes its socket. Call it after the gRPC server stopped, before closing
// the store. Idempotent.
func (s *Server) Stop() {
	s.dataMu.Lock()
	d := s.data
	s.data, s.dataStopped = nil, true
	s.dataMu.Unlock()
	if d != nil {
		d.stop()
	}
}

// Seal seals one segment.
func (s *Server) Seal(ctx context.Context, req *pb.SealRequest) (*pb.SealResponse, error) {
	info, err := s.store.Seal(ctx, fromPBID(req.GetId()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.SealResponse{Info: toPBInfo(info)}, nil
}

// Stat reports one segment.
func (s *Server) Stat(ctx context.Context, req *pb.StatRequest) (*pb.StatResponse, error) {
	info, err := s.store.Stat(ctx, fromPBID(req.GetId()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.StatResponse{Info: toPBInfo(info)}, nil
}

// List streams the segment list in pages; an empty list sends one empty
// page so the client can tell "none" from a broken stream.
func (s *Server) List(req *pb.ListRequest, stream pb.SegmentStore_ListServer) error {
	infos, err := s.store.List(stream.Context(), req.GetTopic())
	if err != nil {
		return toStatus(err)
	}
	for start := 0; start == 0 || start < len(infos); start += listPage {
		page := infos[start:min(start+listPage, len(infos))]
		msg := &pb.ListResponse{Infos: make([]*pb.SegmentInfo, len(page))}
		for i, info := range page {
			msg.Infos[i] = toPBInfo(info)
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
		if len(infos) == 0 {
			break
		}
	}
	return nil
}

// Delete removes one segment.
func (s *Server) Delete(ctx context.Context, req *pb.DeleteRequest) (*pb.DeleteResponse, error) {
	if err := s.store.Delete(ctx, fromPBID(req.GetId())); err != nil {
		return nil, toStatus(err)
	}
	return &pb.DeleteResponse{}, nil
}

// Sync makes every acknowledged append durable.
func (s *Server) Sync(ctx context.Context, _ *pb.SyncRequest) (*pb.SyncResponse, error) {
	if err := s.store.Sync(ctx); err != nil {
		return nil, toStatus(err)
	}
	return &pb.SyncResponse{}, nil
}

// Close closes the wrapped store; the process stays up until the host shuts
// it down.
func (s *Server) Close(context.Context, *pb.CloseRequest) (*pb.CloseResponse, error) {
	if err := s.store.Close(); err != nil {
		return nil, toStatus(err)
	}
	return &pb.CloseResponse{}, nil
}
