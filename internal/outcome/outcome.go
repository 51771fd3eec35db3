// Package outcome names the result of a call the way its caller receives
// it, for the interceptors that record calls (accesslog, audit).
package outcome

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// Code returns the code the caller receives for err, nil being ok. It is
// connect.CodeOf, except that a bare context error has the code connect-go
// sends for it (canceled, deadline_exceeded) rather than unknown: a client
// that gives up or sets a short deadline is not a server failure.
func Code(err error) (connect.Code, bool) {
	if err == nil {
		return 0, true
	}
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return ce.Code(), false
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled, false
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded, false
	}
	return connect.CodeUnknown, false
}

// String returns Code(err) as written in logs: "ok" or the code's name.
func String(err error) string {
	if c, ok := Code(err); !ok {
		return c.String()
	}
	return "ok"
}

// ErrAborted stands for a call whose handler aborted the response: a panic
// with http.ErrAbortHandler, which recovery lets through.
var ErrAborted = connect.NewError(connect.CodeAborted, http.ErrAbortHandler)

// OnAbort, deferred, runs record if the call is panicking with
// http.ErrAbortHandler, then lets the panic go on. Other panics never get
// here when recovery sits inside the recording interceptor.
func OnAbort(record func()) {
	if r := recover(); r != nil {
		if r == http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
			record()
		}
		panic(r)
	}
}

// Protocol names the RPC protocol of an HTTP request the way
// connect.Peer.Protocol does, for the few places that see a call before
// connect-go does (the HTTP layer).
func Protocol(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/grpc-web"):
		return connect.ProtocolGRPCWeb
	case strings.HasPrefix(ct, "application/grpc"):
		return connect.ProtocolGRPC
	}
	return connect.ProtocolConnect
}

type translatedKey struct{}

// WithTranslated returns ctx for a call that a gateway translated from
// protocol (such as "rest") into the protocol the chain sees.
func WithTranslated(ctx context.Context, protocol string) context.Context {
	return context.WithValue(ctx, translatedKey{}, protocol)
}

// CallProtocol names the protocol the caller spoke: the one a gateway
// translated the call from (WithTranslated), or else peer, the one
// connect-go saw.
func CallProtocol(ctx context.Context, peer string) string {
	if p, ok := ctx.Value(translatedKey{}).(string); ok {
		return p
	}
	return peer
}
