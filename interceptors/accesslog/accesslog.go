// Package accesslog writes one structured log line per call: procedure,
// protocol, outcome code, duration, caller (user id or "anonymous") and how
// it authenticated, client IP, request id, and the trace and span ids of
// the call's span when it has one (an OpenTelemetry interceptor such as
// otelconnect outside this one). It never logs a credential or a message.
//
// Values a caller chose (the procedure path of a refused call, the
// request id) are written as slog attribute values, which slog's text
// and JSON handlers quote: they cannot start a line of their own.
//
// It sits outside authentication so refused calls are logged too; the
// caller is read from the context after the inner chain has run, through a
// slot that authn fills (see authn.Observe).
package accesslog

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/interceptors/requestid"
	"github.com/connectguard/guard/internal/outcome"
	"go.opentelemetry.io/otel/trace"
)

// Interceptor logs calls.
type Interceptor struct {
	log *slog.Logger
}

// NewInterceptor returns an Interceptor writing to log at a level that
// says who caused the outcome: Info for successes and for calls the client
// ended (canceled, or past the deadline it set), Warn for refusals (a
// security log wants them), Error only for what the server got wrong
// (internal, unknown, data_loss). A client therefore cannot make ERROR
// lines at will.
func NewInterceptor(log *slog.Logger) *Interceptor {
	return &Interceptor{log: log}
}

// WrapUnary implements connect.Interceptor.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, seen := authn.Observe(ctx)
		start := time.Now()
		defer outcome.OnAbort(func() {
			i.write(ctx, req.Spec().Procedure, outcome.CallProtocol(ctx, req.Peer().Protocol), start, seen, outcome.ErrAborted)
		})
		res, err := next(ctx, req)
		i.write(ctx, req.Spec().Procedure, outcome.CallProtocol(ctx, req.Peer().Protocol), start, seen, err)
		return res, err
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, seen := authn.Observe(ctx)
		start := time.Now()
		defer outcome.OnAbort(func() {
			i.write(ctx, conn.Spec().Procedure, outcome.CallProtocol(ctx, conn.Peer().Protocol), start, seen, outcome.ErrAborted)
		})
		err := next(ctx, conn)
		i.write(ctx, conn.Spec().Procedure, outcome.CallProtocol(ctx, conn.Peer().Protocol), start, seen, err)
		return err
	}
}

func (i *Interceptor) write(ctx context.Context, procedure, protocol string, start time.Time, seen *authn.Observed, err error) {
	code, level := outcome.String(err), slog.LevelInfo
	if c, ok := outcome.Code(err); !ok {
		switch c {
		case connect.CodeCanceled, connect.CodeDeadlineExceeded:
			level = slog.LevelInfo
		case connect.CodeInternal, connect.CodeUnknown, connect.CodeDataLoss:
			level = slog.LevelError
		default:
			level = slog.LevelWarn
		}
	}
	if !i.log.Enabled(ctx, level) {
		return
	}
	ip, _ := clientip.From(ctx)
	user := seen.UserID()
	if user == "" {
		user = "anonymous"
	}
	attrs := [...]slog.Attr{
		slog.String("procedure", procedure),
		slog.String("protocol", protocol),
		slog.String("code", code),
		slog.Duration("duration", time.Since(start)),
		slog.String("user_id", user),
		slog.String("auth", seen.Method().String()),
		slog.String("client_ip", ip.String()),
		slog.String("request_id", requestid.From(ctx)),
		{}, {}, // trace_id, span_id
	}
	n := len(attrs) - 2
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		attrs[n], attrs[n+1] = slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String())
		n += 2
	}
	// The record goes straight to the handler, with no source position:
	// slog.Logger would walk the stack for one, and an access line's
	// source is always this function.
	r := slog.NewRecord(time.Now(), level, "rpc", 0)
	r.AddAttrs(attrs[:n]...)
	_ = i.log.Handler().Handle(ctx, r) // a failed write is the handler's to report, not the call's
}

// Refused logs a call that the HTTP layer refused before connect-go read
// it (see guard.Guard.Handler), in the same form as the calls it sees.
func (i *Interceptor) Refused(r *http.Request, err error) {
	i.write(r.Context(), r.URL.Path, outcome.Protocol(r), time.Now(), nil, err)
}
