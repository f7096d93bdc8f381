package shim

import (
	"context"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/walrus-go/walrus/engine"
	pb "github.com/walrus-go/walrus/plugins/proto/segmentstore/v1"
)

// Handshake values shared by host and plugin. The cookie is not security
// (see SecureConfig for that): it stops a user from running a plugin binary
// by hand and tells a plugin it was started by a Walrus node. Bump
// ProtocolVersion on any incompatible change to segmentstore.proto.
const (
	ProtocolVersion  = 1
	MagicCookieKey   = "WALRUS_SEGMENTSTORE_PLUGIN"
	MagicCookieValue = "7c1f0f3e9d2b4a58b6e0c4d1a9f83e25"
	// PluginName is the key of the store in go-plugin's plugin set.
	PluginName = "segmentstore"
)

// Handshake returns the handshake both sides must agree on.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   MagicCookieKey,
		MagicCookieValue: MagicCookieValue,
	}
}

// Plugin is the go-plugin glue: on the plugin side it serves Impl, on the
// host side it dispenses a *Client.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl is the store served (plugin side only).
	Impl engine.SegmentStore
	// Limits bound what one Append may announce (plugin side).
	Limits engine.Limits
	// NoSharedMemory declines the shared ring (plugin side); appends are
	// framed on the data channel socket as with older plugins.
	NoSharedMemory bool
	// ClientOptions tune the dispensed client (host side).
	ClientOptions ClientOptions

	mu     sync.Mutex
	server *Server // plugin side, once GRPCServer ran
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// GRPCServer registers the store's server on s.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	srv := NewServer(p.Impl, p.Limits)
	if p.NoSharedMemory {
		srv.DisableSharedMemory()
	}
	p.mu.Lock()
	p.server = srv
	p.mu.Unlock()
	pb.RegisterSegmentStoreServer(s, srv)
	return nil
}

// Stop releases what the plugin-side server owns beyond the gRPC server
// (the data channel). Call it once serving ended.
func (p *Plugin) Stop() {
	p.mu.Lock()
	srv := p.server
	p.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// GRPCClient returns a *Client over conn.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewClient(conn, p.ClientOptions), nil
}
