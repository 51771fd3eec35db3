// Package recovery turns a panic in a handler or an inner interceptor into
// an internal error that names the request id and nothing else; the panic
// value and stack go to the log only. A panic with http.ErrAbortHandler,
// the way a handler aborts a response on purpose, is let through, as
// connect-go's own WithRecover does.
//
// Place it inside the interceptors that record calls (access log, audit),
// so that they see a panicking call as the internal error it becomes.
package recovery

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/requestid"
)

// Interceptor recovers panics.
type Interceptor struct {
	log *slog.Logger
}

// NewInterceptor returns an Interceptor logging panics to log.
func NewInterceptor(log *slog.Logger) *Interceptor {
	return &Interceptor{log: log}
}

// WrapUnary implements connect.Interceptor.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (res connect.AnyResponse, err error) {
		defer func() {
			if r := recover(); r != nil {
				res, err = nil, i.internal(ctx, req.Spec().Procedure, r)
			}
		}()
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = i.internal(ctx, conn.Spec().Procedure, r)
			}
		}()
		return next(ctx, conn)
	}
}

func (i *Interceptor) internal(ctx context.Context, procedure string, r any) error {
	if r == http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
		panic(r)
	}
	i.log.ErrorContext(ctx, "panic in handler",
		"procedure", procedure, "request_id", requestid.From(ctx),
		"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	return requestid.InternalError(ctx)
}
