// Package guard puts Guard's security layer in front of Connect handlers:
// authentication, authorization, rate limits, validation, ownership checks,
// audit and access logs, safe errors and security headers, all driven by
// the guard.policy.v1 options declared on each RPC.
//
// A service adopts it in a few lines:
//
//	g, err := guard.New(services, guard.WithTokens(verifier), guard.WithRoles("admin", "member"))
//	if err != nil {
//		return err // a method without a policy, or a policy that cannot be enforced
//	}
//	mux := http.NewServeMux()
//	mux.Handle(docsv1connect.NewDocServiceHandler(docs, g.HandlerOptions()...))
//	http.ListenAndServe(addr, g.Handler(mux))
//
// New builds the interceptor chain and the HTTP layer in the one order this
// package defines; see New for why each step sits where it does.
package guard

import (
	"errors"
	"fmt"
	"net/http"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	connectcors "connectrpc.com/cors"
	"connectrpc.com/validate"
	"github.com/connectguard/guard/interceptors/accesslog"
	"github.com/connectguard/guard/interceptors/audit"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/authz"
	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/interceptors/ownership"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/interceptors/recovery"
	"github.com/connectguard/guard/interceptors/requestid"
	"github.com/connectguard/guard/interceptors/safewire"
	"github.com/connectguard/guard/interceptors/secureheaders"
	"github.com/connectguard/guard/internal/outcome"
	"github.com/rs/cors"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Guard is the security layer of a set of Connect services: an interceptor
// chain for their handlers and an HTTP layer for the server around them.
// Create one with New.
type Guard struct {
	cfg          config
	table        *policy.Table
	limiter      ratelimit.Limiter
	accesslog    *accesslog.Interceptor
	audit        *audit.Interceptor
	authn        *authn.Interceptor
	interceptors []connect.Interceptor
	codecs       connect.HandlerOption
	// refuseEarly is false only in benchmarks that measure what refusing
	// before the body is read saves.
	refuseEarly bool
}

// New returns the Guard of services, whose every method must carry a
// policy (its own or its service's default). It fails, naming each
// method, when one has none or has one that cannot be enforced: a role or
// scope name outside WithRoles/WithScopes, an ownership resource kind
// without a resolver (WithResolver), or audit asked for without a recorder
// (WithAuditRecorder). A server with a gap in its policy does not start.
//
// The chain, outermost first; each position is deliberate:
//
//  1. accesslog: one line per call, whatever happened inside, panics
//     included (recovery sits inside it).
//  2. audit: outside authn, so refused credentials on audited methods are
//     recorded as well as successes; outside recovery, so panics are too.
//  3. recovery: a panic below (a check or the handler) becomes a generic
//     internal error naming the request id; http.ErrAbortHandler passes.
//  4. authn: credential -> principal; everything below may rely on it. It
//     also finishes every unauthenticated answer's challenge per protocol.
//     With WithAdmission, the Admission asks right after it, before any
//     budget is spent: a blocked caller costs nothing more.
//  5. ratelimit: the user's budget over all methods (WithUserRateLimit)
//     and the method's own; it needs the principal for per-user budgets,
//     and runs before authorization, validation and the database so a
//     flood costs little.
//  6. authz: roles and scopes, from the principal alone (no I/O).
//  7. validation: only callers allowed to call the method learn how its
//     input is checked; ids are well-formed before any lookup.
//  8. ownership: the one check that reads the resource, on valid input.
//
// With WithTracerProvider, each of checks 4 to 8 makes a span saying what
// it decided (see package tracing), inside the call's span.
//
// The HTTP layer (Handler) runs before all of it.
func New(services []protoreflect.ServiceDescriptor, opts ...Option) (*Guard, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	cfg.observe()
	var topts []policy.Option
	if cfg.roles != nil {
		topts = append(topts, policy.WithRoles(cfg.roles...))
	}
	if cfg.scopes != nil {
		topts = append(topts, policy.WithScopes(cfg.scopes...))
	}
	table, err := policy.NewTable(services, topts...)
	if err != nil {
		return nil, err
	}
	if cfg.audit == nil {
		var errs []error
		for _, r := range table.Rules() {
			if r.Audit {
				errs = append(errs, fmt.Errorf("method %s asks for audit: give guard.WithAuditRecorder", r.Procedure))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("guard: %w", err)
		}
	}
	validator, err := protovalidate.New(protovalidate.WithMessageDescriptors(table.Inputs()...))
	if err != nil {
		return nil, fmt.Errorf("guard: compile validation rules: %w", err)
	}
	own, err := ownership.NewInterceptor(table, cfg.resolvers, ownership.WithLogger(cfg.log), ownership.WithObserver(cfg.observer))
	if err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	aopts := []authn.Option{authn.WithRealm(cfg.realm), authn.WithLogger(cfg.log)}
	if cfg.keys != nil {
		aopts = append(aopts, authn.WithAPIKeys(cfg.keyPrefix, cfg.keys))
	}
	if cfg.sessions != nil {
		aopts = append(aopts, authn.WithSessionCookie(cfg.cookieName, cfg.sessions, cfg.corsOrigins))
	}
	g := &Guard{
		cfg:         cfg,
		table:       table,
		limiter:     cfg.limiter,
		accesslog:   accesslog.NewInterceptor(cfg.log),
		authn:       authn.NewInterceptor(table, cfg.tokens, aopts...),
		codecs:      safewire.Codecs(cfg.log),
		refuseEarly: true,
	}
	if g.limiter == nil {
		g.limiter = ratelimit.NewMemory()
	}
	if cfg.audit != nil {
		g.audit = audit.NewInterceptor(table, cfg.audit, cfg.log)
	}
	g.interceptors = []connect.Interceptor{g.accesslog}
	if cfg.observer != nil { // outermost: the whole chain's time, the caller's code
		g.interceptors = append([]connect.Interceptor{observeInterceptor{cfg.observer}}, g.interceptors...)
	}
	if g.audit != nil {
		g.interceptors = append(g.interceptors, g.audit)
	}
	// Each check sits between the interceptors that trace its decision
	// (WithTracerProvider); without a tracer provider, alone.
	tr := cfg.tracer
	g.interceptors = append(g.interceptors, recovery.NewInterceptor(cfg.log))
	g.interceptors = append(g.interceptors, tr.Around("authn", g.authn)...)
	if cfg.admission != nil { // right after authn: a blocked caller spends no budget
		g.interceptors = append(g.interceptors, admissionInterceptor{cfg.admission})
	}
	g.interceptors = append(g.interceptors, tr.Around("ratelimit", ratelimit.NewInterceptor(table, g.limiter,
		ratelimit.WithLogger(cfg.log), ratelimit.WithUserLimit(cfg.userRequests, cfg.userWindow)))...)
	g.interceptors = append(g.interceptors, tr.Around("authz", authz.NewInterceptor(table, authz.WithObserver(cfg.observer)))...)
	g.interceptors = append(g.interceptors, tr.Around("validate", validate.NewInterceptor(validate.WithValidator(validator)))...)
	g.interceptors = append(g.interceptors, tr.Around("ownership", own)...)
	return g, nil
}

// Table returns the policy table read from the services.
func (g *Guard) Table() *policy.Table { return g.table }

// HandlerOptions are the options for the handlers of the services given
// to New: the interceptor chain, the body limit and codecs that answer an
// undecodable message with a generic error.
func (g *Guard) HandlerOptions() []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithInterceptors(g.interceptors...),
		connect.WithReadMaxBytes(g.cfg.maxBodyBytes),
		g.codecs,
	}
}

// PlainHandlerOptions are for Connect handlers outside the policy table
// that anyone may call, such as gRPC health: the body limit and safe
// codecs, no interceptors. Behind Handler they still get the HTTP layer.
func (g *Guard) PlainHandlerOptions() []connect.HandlerOption {
	return []connect.HandlerOption{connect.WithReadMaxBytes(g.cfg.maxBodyBytes), g.codecs}
}

// Handler wraps next (the mux of the services) in the HTTP layer, outermost
// first:
//
//  1. request id, so every response, refusals included, carries one;
//  2. security headers on every response (nosniff, no-store, no-referrer;
//     HSTS on TLS);
//  3. CORS, when WithCORSOrigins lists origins: preflights are answered
//     here and never authenticated;
//  4. the client IP (X-Forwarded-For only from WithTrustedProxies);
//  5. the per-IP budget for every request (WithIPRateLimit), refusals
//     logged in aggregate and given to the audit recorder as rate-limit
//     hits (which the recorder should aggregate too);
//  6. malformed timeout headers and unreadable bodies answered safely;
//  7. a call to a non-public procedure with no credential, two, or a
//     malformed one is refused here, before its body is read, with the
//     answer, access-log line and audit event the chain would give it.
func (g *Guard) Handler(next http.Handler) http.Handler {
	h := next
	if g.refuseEarly {
		h = g.refuse(h)
	}
	h = safewire.Middleware(g.cfg.log, h)
	if g.cfg.ipRequests > 0 {
		var ropts []ratelimit.MiddlewareOption
		if g.audit != nil {
			ropts = append(ropts, ratelimit.OnRefused(g.audit.Refused))
		}
		h = ratelimit.Middleware(g.limiter, g.cfg.ipRequests, g.cfg.ipWindow, g.cfg.log, h, ropts...)
	}
	h = clientip.NewResolver(g.cfg.trustedProxies).Middleware(h)
	if len(g.cfg.corsOrigins) > 0 { // rs/cors treats an empty list as "*"
		h = cors.New(cors.Options{
			AllowedOrigins: g.cfg.corsOrigins,
			// Connect's methods, and REST's (google.api.http routes served
			// by a transcoder such as connectrpc.com/vanguard behind Handler).
			AllowedMethods: append(connectcors.AllowedMethods(), http.MethodPut, http.MethodPatch, http.MethodDelete),
			AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization", "X-API-Key"),
			ExposedHeaders: append(append(connectcors.ExposedHeaders(), requestid.Header, "WWW-Authenticate"),
				ratelimit.HeaderNames()...),
			AllowCredentials: true,
			MaxAge:           7200,
		}).Handler(h)
	}
	return requestid.Middleware(secureheaders.Middleware(g.cfg.hsts, h))
}

// refuse answers calls that authn would refuse for their headers alone,
// without reading their bodies, and records them as the chain would.
func (g *Guard) refuse(next http.Handler) http.Handler {
	errw := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := g.authn.Refuse(r)
		if err == nil {
			next.ServeHTTP(w, r)
			return
		}
		g.accesslog.Refused(r, err)
		if g.cfg.observer != nil {
			g.cfg.observer.ObserveCall(r.URL.Path, outcome.Protocol(r), err.Code(), 0)
		}
		if g.audit != nil {
			g.audit.Refused(r, err)
		}
		_ = errw.Write(w, r, err)
	})
}
