package shim

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/walrus-go/walrus/engine"
	pb "github.com/walrus-go/walrus/plugins/proto/segmentstore/v1"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of every error status the
// server sends; a status without it did not come from a Walrus store (a
// transport failure, or a foreign plugin).
const ErrorDomain = "segmentstore.walrus.v1"

// errorRow is one line of the translation table.
type errorRow struct {
	err    error
	code   codes.Code
	reason string
}

// errorTable maps each engine sentinel (and the two context errors, so
// cancellation survives the boundary too) to a real gRPC code plus a reason
// unique to it. Codes may repeat; reasons may not. Never mutated.
var errorTable = [...]errorRow{
	{engine.ErrNotFound, codes.NotFound, "NOT_FOUND"},
	{engine.ErrSealed, codes.FailedPrecondition, "SEALED"},
	{engine.ErrClosed, codes.FailedPrecondition, "CLOSED"},
	{engine.ErrCorrupt, codes.DataLoss, "CORRUPT"},
	{engine.ErrOutOfRange, codes.OutOfRange, "OUT_OF_RANGE"},
	{engine.ErrUnavailable, codes.Unavailable, "UNAVAILABLE"},
	{engine.ErrInvalidName, codes.InvalidArgument, "INVALID_NAME"},
	{engine.ErrInvalidArgument, codes.InvalidArgument, "INVALID_ARGUMENT"},
	{context.Canceled, codes.Canceled, "CANCELED"},
	{context.DeadlineExceeded, codes.DeadlineExceeded, "DEADLINE_EXCEEDED"},
}

// RemoteError is an error the plugin's store returned, rebuilt on the host.
// Error() is the plugin's own message; Unwrap gives the engine sentinel the
// reason names (nil for an error outside the table), so errors.Is works.
type RemoteError struct {
	Code    codes.Code
	Reason  string
	Message string
	target  error
}

func (e *RemoteError) Error() string { return e.Message }

// Unwrap returns the sentinel this error stands for.
func (e *RemoteError) Unwrap() error { return e.target }

// classify finds the table row of err (the first sentinel it wraps).
func classify(err error) (codes.Code, string) {
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return row.code, row.reason
		}
	}
	return codes.Unknown, "UNKNOWN"
}

// remoteError rebuilds a store error from its wire form.
func remoteError(code codes.Code, reason, message string) error {
	remote := &RemoteError{Code: code, Reason: reason, Message: message}
	for _, row := range errorTable {
		if row.reason == reason {
			remote.target = row.err
			break
		}
	}
	return fmt.Errorf("plugin: %w", remote)
}

// toPBError is toStatus for errors carried inside a message (AppendPipe).
func toPBError(err error) *pb.Error {
	code, reason := classify(err)
	return &pb.Error{Code: int32(code), Reason: reason, Message: err.Error()}
}

// fromPBError is fromStatus for errors carried inside a message.
func fromPBError(e *pb.Error) error {
	return remoteError(codes.Code(e.GetCode()), e.GetReason(), e.GetMessage())
}

// toStatus turns a store error into the status the server returns.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	code, reason := classify(err)
	st := status.New(code, err.Error())
	if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain}); derr == nil {
		st = withInfo
	}
	return st.Err()
}

// fromStatus turns what a gRPC call returned into an engine error. what
// names the call for messages ("append logs/3").
//
//   - A status with our ErrorInfo is the store's own error: a RemoteError
//     that unwraps to the sentinel its reason names.
//   - Otherwise, if ctx is done, the caller gave up: ctx.Err().
//   - Otherwise the plugin could not be reached or broke the stream (it
//     crashed, was killed, or its socket closed): engine.ErrUnavailable,
//     whose text says "backend unavailable".
func fromStatus(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if ok {
		for _, d := range st.Details() {
			info, isInfo := d.(*errdetails.ErrorInfo)
			if !isInfo || info.GetDomain() != ErrorDomain {
				continue
			}
			return remoteError(st.Code(), info.GetReason(), st.Message())
		}
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The gRPC text says which stage of the call ran out of time.
		return fmt.Errorf("plugin: %s: %w (gRPC: %v)", what, ctxErr, err)
	}
	msg := err.Error()
	if ok {
		msg = st.Message()
	}
	return fmt.Errorf("plugin: %s: %w: %s", what, engine.ErrUnavailable, msg)
}
