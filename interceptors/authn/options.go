package authn

import "log/slog"

// An Option configures NewInterceptor.
type Option interface{ apply(*Interceptor) }

type optionFunc func(*Interceptor)

func (f optionFunc) apply(a *Interceptor) { f(a) }

// WithAPIKeys accepts API keys, as "Authorization: Bearer <prefix>..." or
// an X-API-Key header, checked by v. API keys are never read from the URL.
// By default API keys are not accepted (and X-API-Key is ignored).
func WithAPIKeys(prefix string, v APIKeyVerifier) Option {
	return optionFunc(func(a *Interceptor) { a.keyPrefix, a.keys = prefix, v })
}

// WithSessionCookie accepts the session cookie named name, checked by v,
// with the CSRF defence described at checkCrossSite; allowedOrigins are the
// browser origins allowed to call with it cross-site (the CORS allow-list).
// By default cookies are ignored.
func WithSessionCookie(name string, v SessionVerifier, allowedOrigins []string) Option {
	return optionFunc(func(a *Interceptor) {
		a.cookieName, a.sessions, a.allowedOrigins = name, v, allowedOrigins
	})
}

// WithRealm names the protection space in the challenges of refusals,
// `Bearer realm="<realm>", ...`. The default is no realm (RFC 6750 makes it
// optional).
func WithRealm(realm string) Option {
	return optionFunc(func(a *Interceptor) { a.realm = realm })
}

// WithLogger sets where a verifier's own failures are logged, with the
// request id. The default is slog.Default().
func WithLogger(log *slog.Logger) Option {
	return optionFunc(func(a *Interceptor) {
		if log != nil {
			a.log = log
		}
	})
}
