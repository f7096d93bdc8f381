package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
)

// ErrAuth is wrapped by every *AuthError.
var ErrAuth = errors.New("authentication refused")

// AuthError is a refused AUTH on connect: Message is the server's ERR
// text. The connection is closed.
type AuthError struct {
	Addr    string
	User    string
	Message string
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("%s: AUTH as %q refused: %s (check --user and WALRUS_PASSWORD)", e.Addr, e.User, e.Message)
}

// Unwrap makes errors.Is(err, ErrAuth) true.
func (e *AuthError) Unwrap() error { return ErrAuth }

// authenticate sends "AUTH <user> <password>" on a fresh conn and waits
// for OK, before the Client owns conn (so no other frame is in flight and
// the temporary reader cannot read past the reply).
func authenticate(ctx context.Context, conn net.Conn, addr string, o Options) error {
	req := protocol.Request{Command: "AUTH", Args: []string{o.User, o.Password}}
	if err := protocol.ValidateRequest(req); err != nil {
		return &AuthError{Addr: addr, User: o.User, Message: "user name and password must be single words without spaces"}
	}
	deadline := time.Time{}
	if t := o.timeout(); t > 0 {
		deadline = time.Now().Add(t)
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	if _, err := conn.Write(protocol.AppendRequestFrame(nil, req)); err != nil {
		return &ConnError{Addr: addr, Op: "write", Err: err}
	}
	frame, err := protocol.ReadFrame(bufio.NewReaderSize(conn, 512), protocol.DefaultMaxFrameBytes)
	if err != nil {
		return &ConnError{Addr: addr, Op: "read", Err: err}
	}
	rep := protocol.ParseReply(frame)
	if rep.Kind == protocol.ReplyOK {
		return nil
	}
	return &AuthError{Addr: addr, User: o.User, Message: string(rep.Body)}
}
