package clicmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/protocol"
)

// Exit codes of walrus-cli. Scripts rely on them; README documents them.
const (
	ExitOK          = 0   // success (including EMPTY from get)
	ExitReply       = 1   // the node answered ERR ..., or a check failed (status, bench verify)
	ExitUsage       = 2   // bad flags or arguments
	ExitUnreachable = 3   // could not connect to, or lost the connection to, a node
	ExitTimeout     = 4   // --timeout elapsed before the node answered
	ExitInterrupted = 130 // SIGINT/SIGTERM
)

// usageError marks a mistake on the command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// replyError is an ERR reply from a node; Run prints it as "ERR <message>".
type replyError struct{ msg string }

func (e *replyError) Error() string { return "ERR " + e.msg }

// nodeError is a failure to talk to the node at addr (dial, I/O or timeout).
type nodeError struct {
	addr    string
	timeout bool
	err     error
}

func (e *nodeError) Error() string {
	// node/client's ConnError already names the address; say it once.
	detail := e.err.Error()
	if ce, ok := errors.AsType[*client.ConnError](e.err); ok && ce.Err != nil {
		detail = ce.Op + ": " + ce.Err.Error()
	}
	if e.timeout {
		return fmt.Sprintf("timed out talking to %s: %s", e.addr, detail)
	}
	return fmt.Sprintf("cannot reach %s: %s", e.addr, detail)
}
func (e *nodeError) Unwrap() error { return e.err }

// checkFailed is a command that ran but found a problem it already reported
// (unreachable nodes in status, missing messages in bench consume).
type checkFailed struct{ msg string }

func (e *checkFailed) Error() string { return e.msg }

// classify turns an error from node/client into one of the types above, so
// that every command reports failures the same way. ctx is the command's
// context: its cancellation by a signal is not the node's fault.
func classify(ctx context.Context, addr string, err error) error {
	if err == nil {
		return nil
	}
	if se, ok := errors.AsType[*client.ServerError](err); ok {
		return &replyError{msg: se.Message}
	}
	// The client refuses a malformed request (bad topic name, empty payload,
	// invalid UTF-8) before sending it: the user's input is wrong, the node
	// is fine.
	if _, ok := errors.AsType[*protocol.RequestError](err); ok {
		return &usageError{err: err}
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &nodeError{addr: addr, timeout: true, err: err}
	}
	return &nodeError{addr: addr, err: err}
}

// exitCode maps an error returned by a command to the process exit code and
// the message to print on stderr ("" when the command printed it already).
func exitCode(err error) (int, string) {
	if err == nil {
		return ExitOK, ""
	}
	if re, ok := errors.AsType[*replyError](err); ok {
		return ExitReply, re.Error()
	}
	if ne, ok := errors.AsType[*nodeError](err); ok {
		if ne.timeout {
			return ExitTimeout, "walrus-cli: " + ne.Error()
		}
		return ExitUnreachable, "walrus-cli: " + ne.Error()
	}
	if cf, ok := errors.AsType[*checkFailed](err); ok {
		return ExitReply, "walrus-cli: " + cf.msg
	}
	if errors.Is(err, context.Canceled) {
		return ExitInterrupted, "walrus-cli: interrupted"
	}
	if _, ok := errors.AsType[*usageError](err); ok {
		return ExitUsage, "walrus-cli: " + err.Error() + "\nRun 'walrus-cli --help' for usage."
	}
	// cobra reports unknown commands and flags as plain errors.
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.Contains(msg, "flag needs an argument") {
		return ExitUsage, "walrus-cli: " + msg + "\nRun 'walrus-cli --help' for usage."
	}
	return ExitReply, "walrus-cli: " + msg
}
