// Package audit records every call of the methods whose policy asks for it,
// allowed or refused, with who called, from where and the outcome; and, on
// every method, the refusals of the chain that an operator watches for:
// a missing role or scope (authz) and a rate limit (ratelimit), each with
// its own event Type. A Recorder that stores events should aggregate
// TypeRateLimitHit events, which a flood produces as fast as it is refused.
//
// It sits outside authentication so that refused credentials on audited
// methods are recorded too.
package audit

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/authz"
	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/interceptors/requestid"
	"github.com/connectguard/guard/internal/outcome"
)

// Type is the kind of an audit event. The names are those of
// guard.audit.v1.EventType, in lower case without the prefix.
type Type string

// The event types. The interceptor records TypeRPC, TypeAuthorizationDenied
// and TypeRateLimitHit; services record the others.
const (
	// TypeRPC is one call of a method whose policy says audit: true.
	TypeRPC                 Type = "rpc"
	TypeLoginSuccess        Type = "login_success"
	TypeLoginFailure        Type = "login_failure"
	TypeLockout             Type = "lockout"
	TypeRefresh             Type = "refresh"
	TypeRefreshTokenReuse   Type = "refresh_token_reuse"
	TypeLogout              Type = "logout"
	TypePasswordChange      Type = "password_change"
	TypeAPIKeyCreated       Type = "api_key_created"
	TypeAPIKeyRevoked       Type = "api_key_revoked"
	TypeRoleChange          Type = "role_change"
	TypeUserDisabled        Type = "user_disabled"
	TypeAuthorizationDenied Type = "authorization_denied"
	TypeRateLimitHit        Type = "rate_limit_hit"
	TypeSuspiciousActivity  Type = "suspicious_activity"
)

// Types lists every Type.
func Types() []Type {
	return []Type{
		TypeRPC, TypeLoginSuccess, TypeLoginFailure, TypeLockout, TypeRefresh,
		TypeRefreshTokenReuse, TypeLogout, TypePasswordChange, TypeAPIKeyCreated,
		TypeAPIKeyRevoked, TypeRoleChange, TypeUserDisabled, TypeAuthorizationDenied,
		TypeRateLimitHit, TypeSuspiciousActivity,
	}
}

// Event is one audited call, or one refusal of the chain.
type Event struct {
	// Type is TypeRPC for an audited call the chain let through or refused
	// for another reason, TypeAuthorizationDenied or TypeRateLimitHit for
	// those refusals (on any method).
	Type Type
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
		if req.Spec().IsClient {
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

// typeOf returns the type of the event for a call that ended with err,
// and whether to record it.
func (i *Interceptor) typeOf(procedure string, err error) (Type, bool) {
	switch {
	case err == nil:
	case errors.Is(err, ratelimit.ErrLimited):
		return TypeRateLimitHit, true
	case errors.Is(err, authz.ErrDenied):
		return TypeAuthorizationDenied, true
	}
	return TypeRPC, i.audited(procedure)
}

func (i *Interceptor) record(ctx context.Context, procedure string, seen *authn.Observed, err error) {
	typ, ok := i.typeOf(procedure, err)
	if !ok {
		return
	}
	code := outcome.String(err)
	ip, _ := clientip.From(ctx)
	e := Event{
		Type:      typ,
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

// Refused records a request that the HTTP layer refused before connect-go
// read it (see guard.Guard.Handler), as the interceptor would have: a call
// of an audited method, or a refusal the interceptor records on every
// method (a rate limit). A path that is no procedure of the table is
// recorded cut to maxPath bytes of printable ASCII: it is the client's
// text.
func (i *Interceptor) Refused(r *http.Request, err error) {
	procedure := r.URL.Path
	if _, ok := i.table.Lookup(procedure); !ok {
		procedure = printable(procedure, maxPath)
	}
	i.record(r.Context(), procedure, nil, err)
}

// maxPath bounds the paths of unknown procedures in events.
const maxPath = 256

// printable returns s cut to n bytes, with every byte that is not
// printable ASCII replaced by '?'.
func printable(s string, n int) string {
	b := []byte(s[:min(len(s), n)])
	for j, c := range b {
		if c < 0x20 || c > 0x7e {
			b[j] = '?'
		}
	}
	return string(b)
}
