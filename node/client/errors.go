package client

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed: the Client was closed by its owner.
	ErrClosed = errors.New("client closed")
	// ErrUnexpectedReply: the server answered with a reply kind the call
	// does not expect (e.g. EMPTY to a PUT).
	ErrUnexpectedReply = errors.New("unexpected reply")
)

// ServerError is an "ERR <message>" reply. Message is the text after
// "ERR ", exactly as the server sent it.
type ServerError struct {
	Message string
}

// Error returns the reply as it was on the wire ("ERR <message>").
func (e *ServerError) Error() string { return "ERR " + e.Message }

// ConnError is a failure of the connection to Addr: dialing, writing,
// reading, a timeout or a broken stream. Op says which.
type ConnError struct {
	Addr string
	Op   string // "dial", "write", "read"
	Err  error
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("walrus %s: %s: %v", e.Addr, e.Op, e.Err)
}

func (e *ConnError) Unwrap() error { return e.Err }

// Timeout reports whether the failure was a deadline.
func (e *ConnError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}
