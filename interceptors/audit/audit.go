// Package audit records every call of the methods whose policy asks for it,
// allowed or refused, with who called, from where and the outcome.
//
// It sits outside authentication so that refused credentials on audited
// methods are recorded too.
package audit

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/interceptors/internal/outcome"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/interceptors/requestid"
)

// Event is one audited call.
type Event struct {
	Time time.Time
	// ActorID is the caller's user id, "" when unauthenticated.
	ActorID   string
	Procedure string
	// Code is "ok" or the Connect code of the error.
	Code      string
	ClientIP  string
	RequestID string
}

// Recorder stores events.
type Recorder interface {
	RecordAudit(ctx context.Context, e Event) error
}

// Interceptor records audited calls.
type Interceptor struct {
	table *policy.Table
	rec   Recorder
	log   *slog.Logger
}

// NewInterceptor returns an Interceptor recording the audited methods of
// table into rec. A failure to record is logged at Error level; the call's
// own result is not changed, since its effect has already happened.
func NewInterceptor(table *policy.Table, rec Recorder, log *slog.Logger) *Interceptor {
	return &Interceptor{table: table, rec: rec, log: log}
}

// WrapUnary implements connect.Interceptor.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient || !i.audited(req.Spec().Procedure) {
			return next(ctx, req)
		}
		ctx, seen := authn.Observe(ctx)
		defer outcome.OnAbort(func() { i.record(ctx, req.Spec().Procedure, seen, outcome.ErrAborted) })
		res, err := next(ctx, req)
		i.record(ctx, req.Spec().Procedure, seen, err)
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
		if !i.audited(conn.Spec().Procedure) {
			return next(ctx, conn)
		}
		ctx, seen := authn.Observe(ctx)
		defer outcome.OnAbort(func() { i.record(ctx, conn.Spec().Procedure, seen, outcome.ErrAborted) })
		err := next(ctx, conn)
		i.record(ctx, conn.Spec().Procedure, seen, err)
		return err
	}
}

func (i *Interceptor) audited(procedure string) bool {
	rule, ok := i.table.Lookup(procedure)
	return ok && rule.Audit
}

func (i *Interceptor) record(ctx context.Context, procedure string, seen *authn.Observed, err error) {
	code := outcome.String(err)
	ip, _ := clientip.From(ctx)
	e := Event{
		Time:      time.Now(),
		ActorID:   seen.UserID(),
		Procedure: procedure,
		Code:      code,
		ClientIP:  ip.String(),
		RequestID: requestid.From(ctx),
	}
	// The call may have been cancelled; the record must still be written.
	if rerr := i.rec.RecordAudit(context.WithoutCancel(ctx), e); rerr != nil {
		i.log.ErrorContext(ctx, "audit record lost", "procedure", procedure, "request_id", e.RequestID, "error", rerr)
	}
}

// Refused records a call to an audited method that the HTTP layer refused
// before connect-go read it (see guard.Guard.Handler), as the interceptor
// would have.
func (i *Interceptor) Refused(r *http.Request, err error) {
	if i.audited(r.URL.Path) {
		i.record(r.Context(), r.URL.Path, nil, err)
	}
}
