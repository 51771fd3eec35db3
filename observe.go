package guard

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/authz"
	"github.com/connectguard/guard/interceptors/ownership"
	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/internal/outcome"
)

// Observer is told what the security layer sees and decides, for metrics:
// the outcome of every call, every credential checked, every denial and
// every rate-limit refusal. Guard itself depends on no metrics library;
// the demo server implements Observer with Prometheus (internal/metrics).
//
// Its methods run on the request path, so they must be cheap and safe for
// concurrent use. Every argument comes from a closed set (Guard's own
// constants, connect's codes and protocols, the policy table's
// procedures) except protocol, which is what connect-go reports, and
// procedure in ObserveCall, which is a procedure of the table: an
// implementation should still map any value it does not know to one fixed
// label, so that no caller can create a new series.
type Observer interface {
	// ObserveCall reports a call answered by the chain, or refused by the
	// HTTP layer before its body was read (see Guard.Handler), with the
	// code its caller received (0 for ok) and how long the chain took (0
	// for a refusal in the HTTP layer, which reads headers only).
	ObserveCall(procedure, protocol string, code connect.Code, elapsed time.Duration)
	// ObserveAuthentication reports a credential handed to its verifier
	// and the verdict: one of the Auth* results. Calls refused before a
	// verifier ran (no credential, two, a malformed one, a cross-site
	// cookie call) are not attempts; ObserveCall sees their code.
	ObserveAuthentication(method authn.Method, result string)
	// ObserveDenial reports a call refused by authorization (the reasons
	// authz.ReasonRole, authz.ReasonScope) or by the ownership check
	// (ownership.ReasonOwnership).
	ObserveDenial(procedure, reason string)
	// ObserveRateLimited reports a call refused by a rate limit, by the
	// kind of budget that was full: RateLimitIP, RateLimitUser or
	// RateLimitMethod.
	ObserveRateLimited(kind string)
}

// SourceObserver, when the Observer given to WithObserver also implements
// it, is told of every credential that fails verification (the result
// AuthInvalid) with the call's context, whose client IP clientip.From
// gives: for the detection of a burst of bad credentials from one
// network. It runs on the request path, like Observer's methods.
type SourceObserver interface {
	ObserveInvalidCredential(ctx context.Context, method authn.Method)
}

// The results ObserveAuthentication reports.
const (
	AuthOK      = "ok"
	AuthInvalid = "invalid" // unknown, forged, revoked, or a disabled user's
	AuthExpired = "expired"
	AuthError   = "error" // the verifier could not tell (a database down)
)

// The kinds of budget ObserveRateLimited reports.
const (
	RateLimitIP     = "ip"     // WithIPRateLimit, in the HTTP layer
	RateLimitUser   = "user"   // WithUserRateLimit
	RateLimitMethod = "method" // a method's rate_limit policy, per user or per IP
)

// WithObserver reports what the security layer sees and decides to o, for
// metrics (see Observer). By default nothing is reported, and the chain
// has no step for it.
func WithObserver(o Observer) Option {
	return optionFunc(func(c *config) { c.observer = o })
}

// Compile-time checks: one Observer serves the library's interceptors.
var (
	_ authz.Observer     = Observer(nil)
	_ ownership.Observer = Observer(nil)
)

// observeInterceptor reports every call's outcome and duration. It is the
// outermost step of the chain, so its duration is the whole chain's and
// its code the one the caller receives, panics and aborts included.
type observeInterceptor struct{ o Observer }

func (i observeInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		start := time.Now()
		defer outcome.OnAbort(func() {
			i.o.ObserveCall(req.Spec().Procedure, outcome.CallProtocol(ctx, req.Peer().Protocol), connect.CodeAborted, time.Since(start))
		})
		res, err := next(ctx, req)
		i.o.ObserveCall(req.Spec().Procedure, outcome.CallProtocol(ctx, req.Peer().Protocol), codeOf(err), time.Since(start))
		return res, err
	}
}

func (i observeInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i observeInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		defer outcome.OnAbort(func() {
			i.o.ObserveCall(conn.Spec().Procedure, outcome.CallProtocol(ctx, conn.Peer().Protocol), connect.CodeAborted, time.Since(start))
		})
		err := next(ctx, conn)
		i.o.ObserveCall(conn.Spec().Procedure, outcome.CallProtocol(ctx, conn.Peer().Protocol), codeOf(err), time.Since(start))
		return err
	}
}

// codeOf is the code the caller receives for err, 0 for ok; a bare
// context error gets the code connect-go sends for it, as in the access
// log (interceptors/internal/outcome, which this package cannot import).
func codeOf(err error) connect.Code {
	if err == nil {
		return 0
	}
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return ce.Code()
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded
	}
	return connect.CodeUnknown
}

// observedLimiter reports the refusals of a Limiter, whichever layer
// asked (the HTTP layer's per-IP budget or the interceptor's).
type observedLimiter struct {
	ratelimit.Limiter
	o Observer
}

func (l observedLimiter) Allow(ctx context.Context, quotas ...ratelimit.Quota) (ratelimit.Decision, error) {
	d, err := l.Limiter.Allow(ctx, quotas...)
	if err == nil && !d.Allowed {
		l.o.ObserveRateLimited(refusedKind(d))
	}
	return d, err
}

// refusedKind is the kind of the first full budget of a refusal: the
// quota names are the RateLimit header names, "ip", "user", "method",
// "method-user", "method-ip".
func refusedKind(d ratelimit.Decision) string {
	states := d.States()
	name := ""
	for _, st := range states {
		if st.Remaining == 0 {
			name = st.Quota.Name
			break
		}
	}
	if name == "" && len(states) > 0 {
		name = states[0].Quota.Name
	}
	switch name {
	case "ip":
		return RateLimitIP
	case "user":
		return RateLimitUser
	}
	return RateLimitMethod
}

// authResult is the verdict of a verifier as ObserveAuthentication
// reports it, by the rules authn applies to it.
func authResult(p *authn.Principal, err error) string {
	switch {
	case errors.Is(err, authn.ErrExpired):
		return AuthExpired
	case errors.Is(err, authn.ErrInvalid), err == nil && p == nil:
		return AuthInvalid
	case err != nil:
		return AuthError
	}
	return AuthOK
}

// observedTokens, observedKeys and observedSessions report each verdict
// of the verifier they wrap.
type observedTokens struct {
	authn.TokenVerifier
	observed
}

func (v observedTokens) VerifyToken(ctx context.Context, token string) (*authn.Principal, error) {
	p, err := v.TokenVerifier.VerifyToken(ctx, token)
	v.observe(ctx, authn.MethodAccessToken, p, err)
	return p, err
}

type observedKeys struct {
	authn.APIKeyVerifier
	observed
}

func (v observedKeys) VerifyAPIKey(ctx context.Context, key string) (*authn.Principal, error) {
	p, err := v.APIKeyVerifier.VerifyAPIKey(ctx, key)
	v.observe(ctx, authn.MethodAPIKey, p, err)
	return p, err
}

type observedSessions struct {
	authn.SessionVerifier
	observed
}

func (v observedSessions) VerifySession(ctx context.Context, cookie string) (*authn.Principal, error) {
	p, err := v.SessionVerifier.VerifySession(ctx, cookie)
	v.observe(ctx, authn.MethodSessionCookie, p, err)
	return p, err
}

// observed reports the verdict of a verifier to o, and an invalid
// credential also to its SourceObserver.
type observed struct{ o Observer }

func (v observed) observe(ctx context.Context, method authn.Method, p *authn.Principal, err error) {
	result := authResult(p, err)
	v.o.ObserveAuthentication(method, result)
	if result == AuthInvalid {
		if so, ok := v.o.(SourceObserver); ok {
			so.ObserveInvalidCredential(ctx, method)
		}
	}
}

// observe wraps what cfg verifies and limits with reporting to its
// observer, if it has one.
func (c *config) observe() {
	o := c.observer
	if o == nil {
		return
	}
	if c.tokens != nil {
		c.tokens = observedTokens{c.tokens, observed{o}}
	}
	if c.keys != nil {
		c.keys = observedKeys{c.keys, observed{o}}
	}
	if c.sessions != nil {
		c.sessions = observedSessions{c.sessions, observed{o}}
	}
	if c.limiter == nil {
		c.limiter = ratelimit.NewMemory()
	}
	c.limiter = observedLimiter{c.limiter, o}
}
