// Package callcheck turns a check of a call's metadata into a
// connect.Interceptor that runs it on unary and streaming handler calls
// alike, so no security check can forget streams.
package callcheck

import (
	"context"
	"net/http"

	"connectrpc.com/connect"
)

// Call is what a check may look at before any message is read.
type Call struct {
	Spec   connect.Spec
	Peer   connect.Peer
	Header http.Header
}

// Func checks a call. It returns the context the rest of the chain sees, or
// an error that ends the call.
type Func func(ctx context.Context, call Call) (context.Context, error)

// Interceptor runs a Func on every handler call. Client calls pass through.
type Interceptor struct {
	check Func
}

// New returns an Interceptor running check.
func New(check Func) Interceptor {
	return Interceptor{check: check}
}

// WrapUnary implements connect.Interceptor.
func (i Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := i.check(ctx, Call{Spec: req.Spec(), Peer: req.Peer(), Header: req.Header()})
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (i Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.check(ctx, Call{Spec: conn.Spec(), Peer: conn.Peer(), Header: conn.RequestHeader()})
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
