// Package rpcerr is the one place where errors from the store and other
// internals become Connect errors safe to show a stranger. Details of
// unexpected errors (SQL, driver text, paths) go to the log with the
// request id; the caller sees only the id.
package rpcerr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/requestid"
	"github.com/connectguard/guard/store"
)

// FromStore translates err, an error from operating on a `what` (such as
// "note"), into a Connect error.
func FromStore(ctx context.Context, log *slog.Logger, what string, err error) *connect.Error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("%s not found", what))
	case errors.Is(err, store.ErrConflict):
		return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("%s already exists", what))
	default:
		return Internal(ctx, log, err)
	}
}

// Internal logs err and returns a generic internal error naming the
// request id. A cancelled or timed-out call keeps its own code.
func Internal(ctx context.Context, log *slog.Logger, err error) *connect.Error {
	switch {
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("request canceled"))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	}
	log.ErrorContext(ctx, "internal error", "request_id", requestid.From(ctx), "error", err)
	return requestid.InternalError(ctx)
}
