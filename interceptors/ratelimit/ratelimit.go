// Package ratelimit bounds how often a client IP, a user, or a user at one
// method may call, with strict sliding windows: in ANY rolling interval of
// a quota's window at most its limit is admitted (see SubBuckets for the
// bound, and Memory for the behaviour under floods of keys).
//
// A Limiter is the store. Memory keeps the budgets of one process; a
// shared store (Redis, see the redislimiter package) makes them hold
// across replicas. Each decision is one store operation over every quota
// a call is counted against, all or nothing: a call refused by one budget
// spends nothing of the others.
//
// Middleware applies one per-IP budget to every HTTP request, before its
// body is read. The Interceptor applies, after authentication, a per-user
// budget over all methods (WithUserLimit) and each method's own rate_limit
// policy. Clients are counted by clientip.Network: IPv6 per /64. Every
// credential of one user (token, cookie, API key; any protocol) spends
// the one budget of that user.
//
// Every response governed by a quota carries the RateLimit-Policy and
// RateLimit fields of draft-ietf-httpapi-ratelimit-headers (structured
// fields: `"ip";q=600;w=60` and `"ip";r=599;t=60`). A refusal is
// resource_exhausted (429 on Connect) with Retry-After in whole seconds,
// rounded up, and a google.rpc.RetryInfo detail on every protocol; a
// retry after Retry-After fits.
package ratelimit

import (
	"context"
	"errors"
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
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/interceptors/requestid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"
)

// MaxQuotas is the most quotas one decision may count a call against.
const MaxQuotas = 4

// A Quota is a budget: at most Limit calls under Key in any rolling
// Window.
type Quota struct {
	// Name is the policy's name in the RateLimit headers ("ip", "user",
	// "method"): short, and unique among the quotas of one response.
	Name string
	// Key names whose budget it is, such as "ip|203.0.113.7".
	Key    string
	Limit  int
	Window time.Duration
}

// QuotaState is a quota after a decision.
type QuotaState struct {
	Quota Quota
	// Remaining is how many more calls fit now.
	Remaining int
	// Reset is how long until a counted call leaves the window (a call is
	// given back); zero when none is counted.
	Reset time.Duration
}

// Decision is the outcome of Limiter.Allow.
type Decision struct {
	Allowed bool
	// RetryAfter, when refused, is how long until the call fits every
	// quota: whole seconds, rounded up, at least one.
	RetryAfter time.Duration
	states     [MaxQuotas]QuotaState
	n          int
}

// States returns each quota's state after the decision, in the order the
// quotas were given.
func (d *Decision) States() []QuotaState { return d.states[:d.n] }

// NewDecision is a Decision with these states, for Limiter implementations
// other than this package's.
func NewDecision(allowed bool, retryAfter time.Duration, states ...QuotaState) Decision {
	d := Decision{Allowed: allowed, RetryAfter: retryAfter, n: min(len(states), MaxQuotas)}
	copy(d.states[:], states)
	return d
}

// Limiter is a store of budgets.
type Limiter interface {
	// Allow spends one call of every quota (1 to MaxQuotas), or of none:
	// the call is admitted only if every quota has room. An error means
	// the store could not decide; callers fail closed on it.
	Allow(ctx context.Context, quotas ...Quota) (Decision, error)
}

// Interceptor applies the per-user budget over all methods and each
// method's rate_limit policy.
type Interceptor struct {
	table *policy.Table
	l     Limiter
	user  Quota // Limit 0: no per-user budget over all methods
	log   *slog.Logger
	plans map[string]*plan
}

// plan is what the Interceptor counts one procedure's calls against,
// worked out once: the quotas (without their keys) and the RateLimit-Policy
// line they give, for a call with and without a principal.
type plan struct {
	user               bool // the per-user budget applies (not a public method)
	byUser, byIP       bool
	methodUser, methIP Quota
	withUser, anon     []string // policy lines, shared: never written to
}

// NewInterceptor returns an Interceptor spending l's budgets per the
// policies of table (and WithUserLimit). It must run after authn: a
// per-user limit on a call without a principal is refused.
func NewInterceptor(table *policy.Table, l Limiter, opts ...InterceptorOption) *Interceptor {
	i := &Interceptor{table: table, l: l, log: slog.Default(), plans: make(map[string]*plan)}
	for _, o := range opts {
		o.applyInterceptor(i)
	}
	for _, rule := range table.Rules() {
		p := &plan{}
		var anon []Quota
		if rl := rule.RateLimit; rl != nil {
			p.byUser = rl.Key == policyv1.RateLimitKey_RATE_LIMIT_KEY_USER || rl.Key == policyv1.RateLimitKey_RATE_LIMIT_KEY_BOTH
			p.byIP = rl.Key == policyv1.RateLimitKey_RATE_LIMIT_KEY_IP || rl.Key == policyv1.RateLimitKey_RATE_LIMIT_KEY_BOTH
			userName, ipName := "method", "method"
			if p.byUser && p.byIP {
				userName, ipName = "method-user", "method-ip"
			}
			p.methodUser = Quota{Name: userName, Limit: rl.Requests, Window: rl.Window}
			p.methIP = Quota{Name: ipName, Limit: rl.Requests, Window: rl.Window}
			if p.byUser {
				anon = append(anon, p.methodUser)
			}
			if p.byIP {
				anon = append(anon, p.methIP)
			}
		}
		p.anon = policyLine(anon)
		p.withUser = p.anon
		if i.user.Limit > 0 && !rule.Public {
			p.user = true
			p.withUser = policyLine(append([]Quota{i.user}, anon...))
		}
		i.plans[rule.Procedure] = p
	}
	return i
}

// WrapUnary implements connect.Interceptor.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		hl, err := i.admit(ctx, req.Spec().Procedure, req.Peer())
		if err != nil {
			return nil, err
		}
		res, err := next(ctx, req)
		if err == nil {
			if res != nil {
				hl.set(res.Header())
			}
			return res, nil
		}
		if ce := new(connect.Error); errors.As(err, &ce) { // only on errors: ce escapes
			hl.set(ce.Meta())
		}
		return res, err
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor. A stream is one
// call: it spends one of each budget when it opens.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		hl, err := i.admit(ctx, conn.Spec().Procedure, conn.Peer())
		if err != nil {
			return err
		}
		hl.set(conn.ResponseHeader())
		return next(ctx, conn)
	}
}

// admit decides a call and returns its RateLimit header lines; a refusal
// (or the store's failure) is the error. It returns before the call runs,
// and with it the decision's large frame: only the lines, two words and a
// string, stay on the stack under the handler (the per-stream goroutines
// of HTTP/2 start small, and every byte the chain keeps beneath the
// handler is a byte the stack may have to grow, copying itself, per call).
func (i *Interceptor) admit(ctx context.Context, procedure string, peer connect.Peer) (headerLines, error) {
	d, line, err := i.check(ctx, procedure, peer)
	if err != nil {
		return headerLines{}, err
	}
	return newHeaderLines(line, d.States()), nil
}

// check decides a call, and returns the RateLimit-Policy line of its
// quotas; a refusal (or the store's failure) is the error.
func (i *Interceptor) check(ctx context.Context, procedure string, peer connect.Peer) (Decision, []string, error) {
	p, ok := i.plans[procedure]
	if !ok {
		return Decision{}, nil, policy.ErrNoPolicy()
	}
	var buf [MaxQuotas]Quota
	quotas := buf[:0]
	line := p.anon
	if principal, authenticated := authn.PrincipalFrom(ctx); authenticated && p.user {
		q := i.user
		q.Key = "u|" + principal.UserID
		quotas = append(quotas, q)
		line = p.withUser
	}
	if p.byUser {
		caller, err := authn.Caller(ctx)
		if err != nil {
			return Decision{}, nil, err
		}
		q := p.methodUser
		q.Key = "m|" + procedure + "|u|" + caller.UserID
		quotas = append(quotas, q)
	}
	if p.byIP {
		q := p.methIP
		q.Key = "m|" + procedure + "|i|" + callerNetwork(ctx, peer).String()
		quotas = append(quotas, q)
	}
	if len(quotas) == 0 {
		return Decision{}, nil, nil
	}
	d, err := i.l.Allow(ctx, quotas...)
	if err != nil {
		i.log.ErrorContext(ctx, "rate limit store failed", "procedure", procedure, "request_id", requestid.From(ctx), "error", err)
		return Decision{}, nil, requestid.InternalError(ctx)
	}
	if !d.Allowed {
		return d, line, Error(d)
	}
	return d, line, nil
}

// callerNetwork is the client's network (clientip.Network) as clientip
// resolved it; without that middleware, the direct peer's, never one
// bucket shared by everyone.
func callerNetwork(ctx context.Context, peer connect.Peer) netip.Addr {
	if ip, ok := clientip.From(ctx); ok {
		return clientip.Network(ip)
	}
	ap, err := netip.ParseAddrPort(peer.Addr)
	if err != nil {
		return netip.Addr{}
	}
	return clientip.Network(ap.Addr())
}

// Error is the refusal for a Decision that did not allow the call, with
// the RateLimit headers of its quotas.
func Error(d Decision) *connect.Error {
	err := exhausted(ErrLimited, d.RetryAfter)
	quotas := make([]Quota, 0, MaxQuotas)
	for _, st := range d.States() {
		quotas = append(quotas, st.Quota)
	}
	newHeaderLines(policyLine(quotas), d.States()).set(err.Meta())
	return err
}

// Exhausted is a resource_exhausted refusal saying msg and when to retry:
// Retry-After (whole seconds, rounded up) and a google.rpc.RetryInfo
// detail. Other budgets (such as login lockouts) refuse with it too.
func Exhausted(msg string, retryAfter time.Duration) *connect.Error {
	return exhausted(errors.New(msg), retryAfter)
}

// ErrLimited is in the chain of every refusal by a rate limit ([Error]),
// and of no other resource_exhausted answer, so that the interceptors
// outside the limiter (audit) can tell rate-limit hits from the rest.
var ErrLimited = errors.New("rate limit exceeded")

func exhausted(cause error, retryAfter time.Duration) *connect.Error {
	retryAfter = roundUp(retryAfter)
	secs := int64(retryAfter / time.Second)
	err := connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("%w: retry in %d s", cause, secs))
	if detail, derr := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)}); derr == nil {
		err.AddDetail(detail)
	}
	err.Meta().Set("Retry-After", strconv.FormatInt(secs, 10))
	return err
}

// The header fields of draft-ietf-httpapi-ratelimit-headers.
const (
	policyHeader = "Ratelimit-Policy"
	stateHeader  = "Ratelimit"
)

// headerLines are the RateLimit-Policy line of a decision's quotas
// (policyLine) and the RateLimit line of their states:
// `"<name>";q=<limit>;w=<window s>, ...` and
// `"<name>";r=<remaining>;t=<s>, ...`, one line each per layer (the HTTP
// layer's, the interceptor's). The policy line never changes for a set of
// quotas, so callers make it once and share it; the state line costs one
// string.
type headerLines struct {
	policy []string
	state  string
}

func newHeaderLines(policy []string, states []QuotaState) headerLines {
	if len(states) == 0 {
		return headerLines{}
	}
	var buf [64 * MaxQuotas]byte
	line := buf[:0]
	for i, st := range states {
		if i > 0 {
			line = append(line, ", "...)
		}
		line = strconv.AppendQuote(line, st.Quota.Name)
		line = append(line, ";r="...)
		line = strconv.AppendInt(line, int64(st.Remaining), 10)
		line = append(line, ";t="...)
		line = strconv.AppendInt(line, int64((st.Reset+time.Second-1)/time.Second), 10)
	}
	return headerLines{policy: policy, state: string(line)}
}

// set adds the lines to h; nothing when there were no quotas.
func (hl headerLines) set(h http.Header) {
	if hl.state == "" {
		return
	}
	if h[policyHeader] == nil {
		h[policyHeader] = hl.policy // shared: its capacity is its length, so a later append copies
	} else {
		h[policyHeader] = append(h[policyHeader], hl.policy...)
	}
	h[stateHeader] = append(h[stateHeader], hl.state)
}

// policyLine returns the RateLimit-Policy field line of quotas, in a
// slice whose capacity is its length (so that sharing it is safe), or nil
// for none.
func policyLine(quotas []Quota) []string {
	if len(quotas) == 0 {
		return nil
	}
	var line []byte
	for i, q := range quotas {
		if i > 0 {
			line = append(line, ", "...)
		}
		line = strconv.AppendQuote(line, q.Name)
		line = append(line, ";q="...)
		line = strconv.AppendInt(line, int64(q.Limit), 10)
		line = append(line, ";w="...)
		line = strconv.AppendInt(line, int64(q.Window/time.Second), 10)
	}
	return []string{string(line)}[:1:1]
}

// HeaderNames are the response headers this package sets, for CORS to
// expose to browser code.
func HeaderNames() []string {
	return []string{"Retry-After", "RateLimit-Policy", "RateLimit"}
}

// Middleware refuses HTTP requests beyond requests per window from one
// client network (clientip.Network of the address clientip.Middleware
// resolved, or of the peer without it), answering in the caller's
// protocol, before the body is read. Every response it lets through
// carries the quota's RateLimit headers. Refusals are logged to log at
// Warn, aggregated so that a flood cannot flood the log: the first refusal
// of an address in a 10 s interval is logged with its request id, the
// others of the interval are summed up in one line at its end, and beyond
// 100 addresses an interval sums up the rest in a single line. A nil log
// logs nothing. The store's failure answers internal (fail closed; a store
// such as redislimiter decides its own fallback before that).
func Middleware(l Limiter, requests int, window time.Duration, log *slog.Logger, next http.Handler, opts ...MiddlewareOption) http.Handler {
	errw := connect.NewErrorWriter()
	refusals := newRefusalLog(log, "per-IP rate limit refused a request")
	line := policyLine([]Quota{{Name: "ip", Limit: requests, Window: window}})
	m := &ipLimit{l: l, requests: requests, window: window, log: log, errw: errw, refusals: refusals, line: line}
	for _, o := range opts {
		o.applyMiddleware(m)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.admit(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// ipLimit is the per-IP budget of Middleware.
type ipLimit struct {
	l        Limiter
	requests int
	window   time.Duration
	log      *slog.Logger
	errw     *connect.ErrorWriter
	refusals *refusalLog
	line     []string
	// onRefused, if set, is told of every refusal (OnRefused).
	onRefused func(*http.Request, error)
}

// admit decides r: it sets the RateLimit headers and reports true, or
// answers the refusal (or the store's failure) and reports false. Its
// frame, with the decision, is gone before the next handler runs (see
// Interceptor.admit).
func (m *ipLimit) admit(w http.ResponseWriter, r *http.Request) bool {
	ip, ok := clientip.From(r.Context())
	if !ok {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			ip = ap.Addr()
		}
	}
	network := clientip.Network(ip)
	var buf [48]byte // one allocation for the key
	q := Quota{Name: "ip", Key: string(network.AppendTo(append(buf[:0], "ip|"...))), Limit: m.requests, Window: m.window}
	d, err := m.l.Allow(r.Context(), q)
	switch {
	case err != nil:
		if m.log != nil {
			m.log.ErrorContext(r.Context(), "rate limit store failed", "request_id", requestid.From(r.Context()), "error", err)
		}
		_ = m.errw.Write(w, r, requestid.InternalError(r.Context()))
		return false
	case !d.Allowed:
		m.refusals.refused(r.Context(), network.String(),
			slog.String("path", r.URL.Path), slog.String("request_id", requestid.From(r.Context())))
		rerr := Error(d)
		if m.onRefused != nil {
			m.onRefused(r, rerr)
		}
		_ = m.errw.Write(w, r, rerr)
		return false
	}
	newHeaderLines(m.line, d.States()).set(w.Header())
	return true
}
