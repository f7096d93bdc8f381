package clicmd

import (
	"context"
	"time"

	"github.com/walrus-go/walrus/cli/walrus-cli/internal/bench"
	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/status"
)

// conn is what the commands use of a node connection (node/client.Client).
// An ERR reply comes back as the Reply and as a *client.ServerError.
type conn interface {
	Do(ctx context.Context, req protocol.Request) (protocol.Reply, error)
	DoLine(ctx context.Context, line string) (protocol.Reply, error)
	Close() error

	// The log commands (see node/client/log.go).
	Offsets(ctx context.Context, topic string) (status.Offsets, error)
	Seek(ctx context.Context, topic string, unixMs int64) (uint64, error)
	Fetch(ctx context.Context, topic string, offset uint64, max int) (status.Fetch, error)
	Commit(ctx context.Context, group, topic string, offset uint64) error
	Committed(ctx context.Context, group, topic string) (status.Committed, error)
	Read(ctx context.Context, group, topic string, max int, ackWait time.Duration) (status.Read, error)
	Ack(ctx context.Context, group, topic string, offsets ...uint64) error
	Groups(ctx context.Context, topic string) ([]status.Group, error)
}

var _ conn = (*client.Client)(nil)

type dialFunc func(ctx context.Context, addr string, timeout time.Duration) (conn, error)

// clientOptions turns --timeout, the --tls-* flags and --user (with its
// password) into node/client options: the client's own bound (used where a
// call has no ctx deadline, e.g. bench's Recv) follows --timeout, and
// --timeout 0 means no bound at all.
func (a *app) clientOptions(timeout time.Duration) client.Options {
	o := client.Options{Timeout: timeout, TLS: a.tls, User: a.user, Password: a.password}
	if timeout <= 0 {
		o.Timeout = -1
	}
	return o
}

// dialClient is the real dialer: TLS with --tls-*, AUTH with --user.
func (a *app) dialClient(ctx context.Context, addr string, timeout time.Duration) (conn, error) {
	c, err := client.Dial(ctx, addr, a.clientOptions(timeout))
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return c, nil
}

// clientPipe adapts a client.Client to bench.Pipe. Recv gets no ctx
// deadline (the client's own timeout bounds it) because the bench cancels by
// closing the connection, and a ctx per Recv would cost an allocation per
// message.
type clientPipe struct{ c *client.Client }

func (p clientPipe) Send(req protocol.Request) error { return p.c.Send(req) }
func (p clientPipe) Flush() error                    { return p.c.Flush() }
func (p clientPipe) Close() error                    { return p.c.Close() }
func (p clientPipe) Recv() (protocol.Reply, error) {
	return p.c.Recv(context.Background())
}

func (a *app) benchDialer() bench.DialFunc {
	return func(ctx context.Context, addr string) (bench.Pipe, error) {
		c, err := client.Dial(ctx, addr, a.clientOptions(a.timeout))
		if err != nil {
			return nil, err
		}
		return clientPipe{c: c}, nil
	}
}
