package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/kafka/kframe"
	"github.com/walrus-go/walrus/node/kafka/kidem"
	"github.com/walrus-go/walrus/node/kafka/ksasl"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/record"
)

// Bounds of the listener.
const (
	// DefaultMaxRequestBytes bounds one request (its size prefix); a
	// bigger one closes the connection.
	DefaultMaxRequestBytes = 100 << 20
	maxConns               = 4096
	// maxInflightBytes bounds the request bodies held at once by all
	// connections together; a reader waits for room before reading one.
	maxInflightBytes = 256 << 20
	// idleTimeout closes a connection that sends nothing this long
	// (Kafka's connections.max.idle.ms default).
	idleTimeout    = 10 * time.Minute
	writeTimeout   = 30 * time.Second
	requestTimeout = 30 * time.Second
	// groupWaitTimeout bounds JoinGroup and SyncGroup, which wait for the
	// other members of a group (the coordinator bounds that wait by the
	// members' rebalance timeouts, kgo's default being 60 s).
	groupWaitTimeout = 5 * time.Minute
	joinGroupKey     = 11
	syncGroupKey     = 14
)

type clientKey struct{}

// clientInfo is who sent a request: its client id and remote host (what
// DescribeGroups shows for a member).
type clientInfo struct{ id, host string }

// Client returns the client id and remote host of the request ctx
// belongs to; they are set for JoinGroup.
func Client(ctx context.Context) (clientID, host string) {
	ci, _ := ctx.Value(clientKey{}).(clientInfo)
	return ci.id, ci.host
}

// Log reads topics as logs (topiclog.Log).
type Log interface {
	Offsets(ctx context.Context, topic string) (earliest, latest uint64, err error)
	Fetch(ctx context.Context, topic string, off uint64, limit, maxBytes int) ([]record.Entry, uint64, error)
}

// Appender appends keyed records to an open segment led here
// (segment.Manager): it answers the segment and segment offset of the
// first record.
type Appender interface {
	AppendRecords(ctx context.Context, topic string, records [][]byte) (seg, first uint64, err error)
	// Count is how many entries segment seg of topic holds here.
	Count(ctx context.Context, topic string, seg uint64) (uint64, error)
}

// Admin creates, deletes and alters topics through the Raft leader
// (router.Router).
type Admin interface {
	CreateTopic(ctx context.Context, topic string, rf, ack int) error
	DeleteTopic(ctx context.Context, topic string) error
	AlterTopic(ctx context.Context, cmd metadata.AlterTopic) error
	// AllocProducerIDs gives node a new block of producer ids
	// (metadata.AllocProducerIDs).
	AllocProducerIDs(ctx context.Context, node uint64) error
}

// Liveness judges whether a node is up.
type Liveness interface {
	Alive(id uint64) bool
}

// Config is the listener's share of the node's configuration.
type Config struct {
	Self uint64
	// AutoCreateTopics lets Metadata create a topic a client asks for
	// with allow_auto_topic_creation.
	AutoCreateTopics bool
	// DefaultRetention are the node-wide limits (DescribeConfigs shows
	// the effective ones).
	DefaultRetention metadata.Limits
	// MaxRequestBytes bounds a request (default DefaultMaxRequestBytes).
	MaxRequestBytes int
	// OnAuthFailure, if set, counts a failed or missing authentication
	// by reason (auth.Reason*).
	OnAuthFailure func(reason string)
}

// Deps are the parts the listener uses.
type Deps struct {
	FSM    *metadata.FSM
	Log    Log
	Append Appender
	Admin  Admin
	Live   Liveness
	// Groups serves the consumer-group APIs; nil: they are not
	// advertised and a request for them closes the connection.
	Groups Groups
	// Users: when enabled, every connection must authenticate with SASL
	// (or a verified TLS client certificate) first.
	Users Users
	// ACL: when enabled, requests are checked (kauthz).
	ACL    Authorizer
	Logger *slog.Logger
}

// Server is the Kafka listener of one node.
type Server struct {
	cfg  Config
	deps Deps
	apis map[int16]api
	idem *kidem.Table
	pids *kidem.IDs

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	cancel context.CancelFunc // ends in-flight requests (long polls) on Close
	wg     sync.WaitGroup
	stop   chan struct{}

	// inflight is the request bytes held now (guarded by mu; room is
	// signalled on it).
	inflight int
	room     *sync.Cond
}

// New builds the listener's server; Serve runs it.
func New(cfg Config, d Deps) *Server {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, deps: d, conns: map[net.Conn]struct{}{}, stop: make(chan struct{}),
		idem: kidem.NewTable(kidem.LogSource{Log: d.Log, Routes: d.FSM, Counts: d.Append, Self: cfg.Self})}
	s.room = sync.NewCond(&s.mu)
	s.pids = kidem.NewIDs(cfg.Self, d.FSM, func(ctx context.Context, node uint64) error { return d.Admin.AllocProducerIDs(ctx, node) })
	s.apis = s.table()
	return s
}

// Serve accepts connections on ln until ctx ends or Close; it returns
// after every connection it served is closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.ln = ln
	ctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.mu.Unlock()
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.stop:
		}
	}()
	defer s.wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() || ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("kafka listener: accept: %w", err)
		}
		if !s.track(c) {
			_ = c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.serveConn(ctx, c)
		}()
	}
}

// Start runs Serve on its own goroutine; the channel is closed once Serve
// returned (after ctx ends or Close).
func (s *Server) Start(ctx context.Context, ln net.Listener) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(ctx, ln); err != nil {
			s.deps.Logger.Error("kafka listener stopped", "err", err)
		}
	}()
	return done
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.conns) >= maxConns {
		if !s.closed {
			s.deps.Logger.Warn("kafka listener: too many connections, refusing one", "max", maxConns, "remote", c.RemoteAddr().String())
		}
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	_ = c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops accepting and closes every connection; Serve returns once
// their goroutines are done.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	close(s.stop)
	if s.cancel != nil {
		s.cancel()
	}
	s.room.Broadcast()
	if s.ln != nil {
		_ = s.ln.Close()
	}
	for c := range s.conns {
		_ = c.Close()
	}
}

// serveConn answers one connection's requests in order (as a Kafka broker
// does), until the peer leaves, sends something it cannot parse, or the
// server stops.
func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriterSize(c, 64<<10)
	var size [4]byte
	var out []byte
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	ctx = context.WithValue(ctx, clientKey{}, clientInfo{host: host})
	cs := s.newConn(c)
	ctx = context.WithValue(ctx, connKey{}, cs)
	for first := true; ; first = false {
		limit, deadline := int64(s.cfg.MaxRequestBytes), time.Now().Add(idleTimeout)
		if cs.Pending() {
			limit, deadline = ksasl.MaxRequestBytes, cs.Deadline()
		}
		_ = c.SetReadDeadline(deadline)
		if _, err := io.ReadFull(br, size[:]); err != nil {
			return
		}
		if first {
			cs.CheckCert(c) // the TLS handshake is done
		}
		n := int64(int32(binary.BigEndian.Uint32(size[:])))
		if n < 8 && !cs.Raw() || n < 0 || n > limit {
			s.deps.Logger.Debug("kafka: request size out of bounds, closing", "size", n, "max", limit, "remote", c.RemoteAddr().String())
			return
		}
		if !s.reserve(int(n)) {
			return
		}
		// The body must follow promptly: a slow sender does not hold its
		// share of maxInflightBytes for long.
		if rd := time.Now().Add(requestTimeout); rd.Before(deadline) {
			deadline = rd
		}
		_ = c.SetReadDeadline(deadline)
		body := make([]byte, n)
		_, err := io.ReadFull(br, body)
		if err == nil && cs.Raw() { // after SaslHandshake v0: a bare token
			var reply []byte
			reply, err = cs.RawToken(body)
			out = append(binary.BigEndian.AppendUint32(out[:0], uint32(len(reply))), reply...)
		} else if err == nil {
			out, err = s.handle(ctx, body, out[:0])
		}
		s.release(int(n))
		if err != nil {
			s.deps.Logger.Debug("kafka: closing connection", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
		if len(out) == 0 {
			continue // acks=0 produce: no response
		}
		_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := bw.Write(out); err != nil {
			return
		}
		if br.Buffered() == 0 || cs.Closing() {
			if err := bw.Flush(); err != nil || cs.Closing() {
				return
			}
		}
		if cap(out) > 1<<20 {
			out = nil // do not keep a large buffer per idle connection
		}
	}
}

// reserve waits until n more request bytes fit maxInflightBytes; false
// once the server is closing.
func (s *Server) reserve(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.inflight+n > max(maxInflightBytes, s.cfg.MaxRequestBytes) && !s.closed {
		s.room.Wait()
	}
	if s.closed {
		return false
	}
	s.inflight += n
	return true
}

func (s *Server) release(n int) {
	s.mu.Lock()
	s.inflight -= n
	s.mu.Unlock()
	s.room.Broadcast()
}

// ErrProtocol is why a connection is closed: a request that cannot be
// parsed, or an API key or version not served.
var ErrProtocol = kframe.ErrProtocol

// handle answers one request (body without its size prefix), appending
// the framed response to out; no bytes means no response.
func (s *Server) handle(ctx context.Context, body, out []byte) ([]byte, error) {
	key := int16(binary.BigEndian.Uint16(body[0:2]))
	version := int16(binary.BigEndian.Uint16(body[2:4]))
	corr := int32(binary.BigEndian.Uint32(body[4:8]))
	ctx, err := s.authorize(ctx, key)
	if err != nil {
		return nil, err
	}
	a, ok := s.apis[key]
	if !ok || version < a.min || version > a.max {
		if key == apiVersionsKey {
			// The protocol's answer to a newer ApiVersions than served:
			// UNSUPPORTED_VERSION in a v0 body, listing what is served.
			resp := s.apiVersions(0)
			resp.ErrorCode = errUnsupportedVersion
			return kframe.Frame(out, corr, resp, false), nil
		}
		return nil, fmt.Errorf("%w: api key %d (%s) version %d not served", ErrProtocol, key, kmsg.NameForKey(key), version)
	}
	timeout := requestTimeout
	if key == joinGroupKey || key == syncGroupKey {
		timeout = groupWaitTimeout
	}
	id, rest, err := kframe.ClientID(body[8:])
	if err != nil {
		return nil, err
	}
	if key == joinGroupKey && id != nil {
		ci, _ := ctx.Value(clientKey{}).(clientInfo)
		ctx = context.WithValue(ctx, clientKey{}, clientInfo{id: string(id), host: ci.host})
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() {
		var err error
		if rest, err = kframe.SkipTags(rest); err != nil {
			return nil, err
		}
	}
	if err := req.ReadFrom(rest); err != nil {
		return nil, fmt.Errorf("%w: %s v%d: %v", ErrProtocol, kmsg.NameForKey(key), version, err)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := a.handle(rctx, req)
	if err != nil || resp == nil {
		return out, err
	}
	resp.SetVersion(version)
	return kframe.Frame(out, corr, resp, resp.IsFlexible() && key != apiVersionsKey), nil
}
