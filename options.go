package guard

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/connectguard/guard/interceptors/audit"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/ownership"
	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/interceptors/tracing"
)

// An Option configures New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	roles, scopes  []string
	tokens         authn.TokenVerifier
	keyPrefix      string
	keys           authn.APIKeyVerifier
	cookieName     string
	sessions       authn.SessionVerifier
	resolvers      map[string]ownership.Resolver
	audit          audit.Recorder
	limiter        ratelimit.Limiter
	ipRequests     int
	ipWindow       time.Duration
	userRequests   int
	userWindow     time.Duration
	trustedProxies []netip.Prefix
	corsOrigins    []string
	maxBodyBytes   int
	realm          string
	hsts           time.Duration
	log            *slog.Logger
	observer       Observer        // nil: nothing reported (WithObserver)
	admission      Admission       // nil: no step (WithAdmission)
	tracer         *tracing.Tracer // nil: no decision spans (tracing.go)
}

func defaultConfig() config {
	return config{
		resolvers:    make(map[string]ownership.Resolver),
		maxBodyBytes: 1 << 20,
		hsts:         365 * 24 * time.Hour,
		log:          slog.Default(),
	}
}

// WithRoles lists the role names policies may use; any other name stops
// New. By default any name is accepted.
func WithRoles(roles ...string) Option {
	return optionFunc(func(c *config) { c.roles = roles })
}

// WithScopes lists the scope names policies may use; any other name stops
// New. By default any name is accepted.
func WithScopes(scopes ...string) Option {
	return optionFunc(func(c *config) { c.scopes = scopes })
}

// WithTokens verifies bearer tokens (Authorization: Bearer ...). By default
// bearer tokens are refused.
func WithTokens(v TokenVerifier) Option {
	return optionFunc(func(c *config) { c.tokens = v })
}

// WithAPIKeys accepts API keys that start with prefix, as a bearer token or
// in X-API-Key (never in the URL), checked by v. By default API keys are
// not accepted.
func WithAPIKeys(prefix string, v APIKeyVerifier) Option {
	return optionFunc(func(c *config) { c.keyPrefix, c.keys = prefix, v })
}

// WithSessionCookie accepts the session cookie named name, checked by v,
// with a CSRF defence: cookie calls from other sites are refused unless
// their origin is in WithCORSOrigins. By default cookies are ignored.
func WithSessionCookie(name string, v SessionVerifier) Option {
	return optionFunc(func(c *config) { c.cookieName, c.sessions = name, v })
}

// WithResolver checks ownership of resources of kind (the policy's
// ownership.resource) with r. Every kind a policy names needs one. By
// default there are none.
func WithResolver(kind string, r Resolver) Option {
	return optionFunc(func(c *config) { c.resolvers[kind] = r })
}

// WithAuditRecorder stores the audit events of methods whose policy says
// audit: true. By default there is none, and such a method stops New.
func WithAuditRecorder(r AuditRecorder) Option {
	return optionFunc(func(c *config) { c.audit = r })
}

// WithLimiter keeps the budgets of the policies' rate limits, of
// WithIPRateLimit and of WithUserRateLimit: a shared store (such as
// redislimiter) makes them hold across replicas. The default is a new
// ratelimit.Memory, this process's alone.
func WithLimiter(l ratelimit.Limiter) Option {
	return optionFunc(func(c *config) { c.limiter = l })
}

// WithIPRateLimit allows each client IP requests per window over every
// endpoint, before any RPC work. By default there is no such limit.
func WithIPRateLimit(requests int, window time.Duration) Option {
	return optionFunc(func(c *config) { c.ipRequests, c.ipWindow = requests, window })
}

// WithUserRateLimit allows each authenticated user requests per window
// over all non-public methods, whatever credential and protocol they use,
// on top of each method's own policy. By default there is no such limit.
func WithUserRateLimit(requests int, window time.Duration) Option {
	return optionFunc(func(c *config) { c.userRequests, c.userWindow = requests, window })
}

// WithTrustedProxies believes X-Forwarded-For from peers in these ranges.
// By default it is ignored and the client IP is the TCP peer's.
func WithTrustedProxies(p []netip.Prefix) Option {
	return optionFunc(func(c *config) { c.trustedProxies = p })
}

// WithCORSOrigins lets browser pages on these origins (scheme://host[:port])
// call, with credentials. By default no CORS headers are sent, so browsers
// block other origins.
func WithCORSOrigins(origins []string) Option {
	return optionFunc(func(c *config) { c.corsOrigins = origins })
}

// WithMaxBodyBytes bounds a request message. The default is 1 MiB.
func WithMaxBodyBytes(n int) Option {
	return optionFunc(func(c *config) { c.maxBodyBytes = n })
}

// WithRealm names the realm in WWW-Authenticate challenges. By default
// there is none.
func WithRealm(realm string) Option {
	return optionFunc(func(c *config) { c.realm = realm })
}

// WithHSTS sets the max-age of Strict-Transport-Security, sent on TLS
// connections; zero sends none. The default is one year.
func WithHSTS(maxAge time.Duration) Option {
	return optionFunc(func(c *config) { c.hsts = maxAge })
}

// WithLogger sets the logger of access lines, refusals and failures. The
// default is slog.Default().
func WithLogger(log *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if log != nil {
			c.log = log
		}
	})
}
