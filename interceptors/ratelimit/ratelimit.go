package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"connectrpc.com/connect"
	policyv1 "github.com/connectguard/guard/gen/guard/policy/v1"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/interceptors/internal/callcheck"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/interceptors/requestid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Interceptor applies each method's rate_limit policy.
type Interceptor struct {
	callcheck.Interceptor
}

// NewInterceptor returns an Interceptor spending l's budgets per the
// policies of table. It must run after authn: a per-user limit on a call
// without a principal is refused.
func NewInterceptor(table *policy.Table, l *Limiter) *Interceptor {
	return &Interceptor{callcheck.New(func(ctx context.Context, call callcheck.Call) (context.Context, error) {
		rule, ok := table.Lookup(call.Spec.Procedure)
		if !ok {
			return ctx, policy.ErrNoPolicy()
		}
		rl := rule.RateLimit
		if rl == nil {
			return ctx, nil
		}
		// A call limited per user and per IP spends both budgets or
		// neither (AllowAll): a refusal by one must not drain the other.
		var buf [2]string
		keys := buf[:0]
		if rl.Key == policyv1.RateLimitKey_RATE_LIMIT_KEY_USER || rl.Key == policyv1.RateLimitKey_RATE_LIMIT_KEY_BOTH {
			p, err := authn.Caller(ctx)
			if err != nil {
				return ctx, err
			}
			keys = append(keys, "u|"+p.UserID+"|"+rule.Procedure)
		}
		if rl.Key == policyv1.RateLimitKey_RATE_LIMIT_KEY_IP || rl.Key == policyv1.RateLimitKey_RATE_LIMIT_KEY_BOTH {
			keys = append(keys, "i|"+callerIP(ctx, call.Peer).String()+"|"+rule.Procedure)
		}
		if d := l.AllowAll(rl.Requests, rl.Window, keys...); !d.Allowed {
			return ctx, Error(d)
		}
		return ctx, nil
	})}
}

// callerIP prefers the address clientip resolved; without that middleware
// it falls back to the direct peer.
func callerIP(ctx context.Context, peer connect.Peer) netip.Addr {
	if ip, ok := clientip.From(ctx); ok {
		return ip
	}
	ap, err := netip.ParseAddrPort(peer.Addr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// Error is the refusal for a Decision that did not allow the call.
func Error(d Decision) *connect.Error {
	return Exhausted("rate limit exceeded", d.Limit, d.RetryAfter)
}

// Exhausted is a resource_exhausted refusal saying msg and when to retry:
// the Retry-After and RateLimit-* headers and a google.rpc.RetryInfo
// detail. Other budgets (such as login lockouts) refuse with it too; with
// limit 0 the RateLimit-* headers are left out.
func Exhausted(msg string, limit int, retryAfter time.Duration) *connect.Error {
	secs := int64(retryAfter / time.Second)
	err := connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("%s: retry in %d s", msg, secs))
	if detail, derr := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)}); derr == nil {
		err.AddDetail(detail)
	}
	err.Meta().Set("Retry-After", strconv.FormatInt(secs, 10))
	if limit > 0 {
		err.Meta().Set("RateLimit-Limit", strconv.Itoa(limit))
		err.Meta().Set("RateLimit-Remaining", "0")
		err.Meta().Set("RateLimit-Reset", strconv.FormatInt(secs, 10))
	}
	return err
}

// Middleware refuses HTTP requests beyond requests per window from one
// client IP (as resolved by clientip.Middleware, which must run first),
// answering in the caller's protocol. Refusals are logged to log at Warn,
// aggregated so that a flood cannot flood the log: the first refusal of an
// address in a 10 s interval is logged with its request id, the others of
// the interval are summed up in one line at its end, and beyond 100
// addresses an interval sums up the rest in a single line. A nil log logs
// nothing.
func Middleware(l *Limiter, requests int, window time.Duration, log *slog.Logger, next http.Handler) http.Handler {
	errw := connect.NewErrorWriter()
	refusals := newRefusalLog(log, "per-IP rate limit refused a request")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _ := clientip.From(r.Context())
		// One allocation for the key, where "ip|"+ip.String() made two.
		var buf [48]byte
		if d := l.Allow(string(ip.AppendTo(append(buf[:0], "ip|"...))), requests, window); !d.Allowed {
			refusals.refused(r.Context(), ip.String(),
				slog.String("path", r.URL.Path), slog.String("request_id", requestid.From(r.Context())))
			_ = errw.Write(w, r, Error(d))
			return
		}
		next.ServeHTTP(w, r)
	})
}
