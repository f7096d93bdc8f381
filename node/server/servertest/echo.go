// Package servertest runs an in-process Walrus protocol server with a
// trivial handler, for measuring and testing clients (the load generator's
// self-test) without a node behind it. It is production code only in the
// sense that non-test programs (walrus-cli bench) may use it too.
package servertest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"

	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/server"
)

// EchoPayloadBytes is the size of the payload every GET returns.
const EchoPayloadBytes = 100

// Echo is a protocol server on 127.0.0.1 that stores nothing: REGISTER and
// PUT answer OK, GET answers "OK " + a fixed 100-byte payload, STATE and
// METRICS answer small JSON documents, anything else is an unknown
// command. It counts what it served.
type Echo struct {
	srv     *server.Server
	ln      net.Listener
	done    chan error
	payload []byte

	puts atomic.Uint64
	gets atomic.Uint64
}

// NewEcho starts an Echo on a free port of 127.0.0.1 with the default
// server config. Close it when done.
func NewEcho() (*Echo, error) { return NewEchoConfig(server.Config{}, nil) }

// NewEchoConfig starts an Echo with the given server config and logger
// (nil discards).
func NewEchoConfig(cfg server.Config, logger *slog.Logger) (*Echo, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("servertest: listen: %w", err)
	}
	e := &Echo{
		ln:      ln,
		done:    make(chan error, 1),
		payload: []byte(strings.Repeat("e", EchoPayloadBytes)),
	}
	e.srv = server.New(cfg, server.HandlerFunc(e.handle), logger)
	go func() { e.done <- e.srv.Serve(context.Background(), ln) }()
	return e, nil
}

// Addr is the "127.0.0.1:port" to dial.
func (e *Echo) Addr() string { return e.ln.Addr().String() }

// Puts is the number of PUT requests answered OK.
func (e *Echo) Puts() uint64 { return e.puts.Load() }

// Gets is the number of GET requests answered.
func (e *Echo) Gets() uint64 { return e.gets.Load() }

// Close stops the server and waits for its goroutines.
func (e *Echo) Close() error {
	err := e.srv.Close()
	if serr := <-e.done; serr != nil && err == nil {
		err = serr
	}
	// Leave the channel readable for a second Close.
	e.done <- nil
	return err
}

func (e *Echo) handle(_ context.Context, reqs []protocol.Request) []protocol.Reply {
	out := make([]protocol.Reply, len(reqs))
	var puts, gets uint64
	for i, r := range reqs {
		switch r.Command {
		case protocol.CmdRegister:
			out[i] = protocol.OK()
		case protocol.CmdPut:
			puts++
			out[i] = protocol.OK()
		case protocol.CmdGet:
			gets++
			out[i] = protocol.Payload(e.payload)
		case protocol.CmdState:
			out[i] = protocol.Raw(fmt.Appendf(nil, `{"topic":%q,"current_segment":1,"leader_node":1,"sealed_segments":{},"segment_leaders":{"1":1}}`, r.Topic))
		case protocol.CmdMetrics:
			out[i] = protocol.Raw([]byte(`{"id":1,"state":"Leader","current_term":1,"current_leader":1}`))
		default:
			out[i] = protocol.UnknownCommand(r.Command)
		}
	}
	e.puts.Add(puts)
	e.gets.Add(gets)
	return out
}
