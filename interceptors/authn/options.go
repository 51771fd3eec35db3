package authn

// An Option configures NewInterceptor.
type Option interface{ apply(*authenticator) }

type optionFunc func(*authenticator)

func (f optionFunc) apply(a *authenticator) { f(a) }

// WithAPIKeys accepts API keys, as "Authorization: Bearer <prefix>..." or
// an X-API-Key header, checked by v. API keys are never read from the URL.
// By default API keys are not accepted (and X-API-Key is ignored).
func WithAPIKeys(prefix string, v APIKeyVerifier) Option {
	return optionFunc(func(a *authenticator) { a.keyPrefix, a.keys = prefix, v })
}

// WithSessionCookie accepts the session cookie named name, checked by v,
// with the CSRF defence described at checkCrossSite; allowedOrigins are the
// browser origins allowed to call with it cross-site (the CORS allow-list).
// By default cookies are ignored.
func WithSessionCookie(name string, v SessionVerifier, allowedOrigins []string) Option {
	return optionFunc(func(a *authenticator) {
		a.cookieName, a.sessions, a.allowedOrigins = name, v, allowedOrigins
	})
}
