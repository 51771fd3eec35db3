// Package authn turns the credential on a call into a Principal in the
// context, or refuses the call with unauthenticated.
//
// Public methods (per the policy table) are not authenticated at all: a
// credential sent to them is ignored, never half-checked. Every other
// method needs exactly one credential; two at once are refused, never
// merged, and there is no fallback to anonymous.
package authn

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/internal/callcheck"
	"github.com/connectguard/guard/interceptors/policy"
)

// Method says how a principal authenticated.
type Method int

// The ways to authenticate.
const (
	MethodAccessToken Method = iota + 1
	MethodAPIKey
	MethodSessionCookie
)

// Principal is an authenticated caller.
type Principal struct {
	UserID string
	// Roles held by the user, such as "member".
	Roles []string
	// Scoped credentials (API keys) may only do what Scopes allow; a user's
	// own session is unscoped.
	Scoped bool
	Scopes []string
	Method Method
	// SessionID is the session behind a token or cookie, "" for API keys.
	SessionID string
	// KeyID is the API key the caller presented, "" for other credentials.
	KeyID string
}

// HasAnyRole reports whether p holds at least one of roles.
func (p *Principal) HasAnyRole(roles []string) bool {
	for _, want := range roles {
		for _, have := range p.Roles {
			if have == want {
				return true
			}
		}
	}
	return false
}

type principalKey struct{}

// PrincipalFrom returns the caller authenticated by the interceptor.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// Caller returns the principal of an authenticated call, or the
// unauthenticated refusal when there is none: code behind authn that needs
// a caller fails closed if the chain was wired without it.
func Caller(ctx context.Context) (*Principal, error) {
	if p, ok := PrincipalFrom(ctx); ok {
		return p, nil
	}
	return nil, Unauthenticated("authentication required", "")
}

// ErrExpired is returned (wrapped) by a verifier for a credential that was
// valid but has expired; callers are told so, and nothing more.
var ErrExpired = errors.New("credential expired")

// TokenVerifier checks a bearer token and says who presented it.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (*Principal, error)
}

// APIKeyVerifier checks an API key.
type APIKeyVerifier interface {
	VerifyAPIKey(ctx context.Context, key string) (*Principal, error)
}

// SessionVerifier checks the value of a session cookie.
type SessionVerifier interface {
	VerifySession(ctx context.Context, cookie string) (*Principal, error)
}

// maxCredentialLen bounds what is handed to a verifier.
const maxCredentialLen = 4096

// Interceptor authenticates calls.
type Interceptor struct {
	callcheck.Interceptor
}

// NewInterceptor returns an Interceptor that authenticates every
// non-public method of table: bearer tokens with tokens, and API keys and
// session cookies when the options enable them.
func NewInterceptor(table *policy.Table, tokens TokenVerifier, opts ...Option) *Interceptor {
	a := &authenticator{table: table, tokens: tokens}
	for _, o := range opts {
		o.apply(a)
	}
	return &Interceptor{callcheck.New(a.check)}
}

type authenticator struct {
	table  *policy.Table
	tokens TokenVerifier

	keyPrefix string
	keys      APIKeyVerifier

	cookieName     string
	sessions       SessionVerifier
	allowedOrigins []string
}

type credentialKind int

const (
	kindToken credentialKind = iota + 1
	kindAPIKey
	kindCookie
)

func (a *authenticator) check(ctx context.Context, call callcheck.Call) (context.Context, error) {
	rule, ok := a.table.Lookup(call.Spec.Procedure)
	if !ok {
		return ctx, callcheck.ErrNoPolicy()
	}
	if rule.Public {
		return ctx, nil
	}
	kind, value, err := a.credential(call.Header)
	if err != nil {
		return ctx, err
	}
	var p *Principal
	switch kind {
	case kindToken:
		p, err = a.tokens.VerifyToken(ctx, value)
	case kindAPIKey:
		p, err = a.keys.VerifyAPIKey(ctx, value)
	case kindCookie:
		if cerr := a.checkCrossSite(call.Header); cerr != nil {
			return ctx, cerr
		}
		p, err = a.sessions.VerifySession(ctx, value)
	}
	switch {
	case errors.Is(err, ErrExpired):
		return ctx, Unauthenticated("credentials expired", `error="invalid_token", error_description="expired"`)
	case err != nil || p == nil:
		return ctx, Unauthenticated("invalid credentials", `error="invalid_token"`)
	}
	if o, ok := ctx.Value(observedKey{}).(*Observed); ok {
		o.p = p
	}
	return context.WithValue(ctx, principalKey{}, p), nil
}

// credential finds the one credential of a call. Two credentials, even
// of different kinds or naming the same user, are refused: merging them
// would let one vouch for the other.
func (a *authenticator) credential(h http.Header) (credentialKind, string, error) {
	var (
		kind  credentialKind
		value string
		count int
	)
	found := func(k credentialKind, v string) {
		kind, value = k, v
		count++
	}
	auth := h.Values("Authorization")
	if len(auth) > 1 {
		return 0, "", Unauthenticated("more than one credential", `error="invalid_request"`)
	}
	if len(auth) == 1 {
		scheme, token, ok := strings.Cut(auth[0], " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > maxCredentialLen {
			return 0, "", Unauthenticated("invalid credentials", `error="invalid_request"`)
		}
		if a.keys != nil && strings.HasPrefix(token, a.keyPrefix) {
			found(kindAPIKey, token)
		} else {
			found(kindToken, token)
		}
	}
	if a.keys != nil {
		switch keys := h.Values("X-API-Key"); {
		case len(keys) > 1:
			return 0, "", Unauthenticated("more than one credential", `error="invalid_request"`)
		case len(keys) == 1:
			if keys[0] == "" || len(keys[0]) > maxCredentialLen {
				return 0, "", Unauthenticated("invalid credentials", `error="invalid_request"`)
			}
			found(kindAPIKey, keys[0])
		}
	}
	if a.sessions != nil {
		var cookies []string
		for _, line := range h.Values("Cookie") {
			parsed, err := http.ParseCookie(line)
			if err != nil {
				continue // unparseable cookie lines carry no session
			}
			for _, c := range parsed {
				if c.Name == a.cookieName {
					cookies = append(cookies, c.Value)
				}
			}
		}
		switch {
		case len(cookies) > 1:
			return 0, "", Unauthenticated("more than one credential", `error="invalid_request"`)
		case len(cookies) == 1:
			if cookies[0] == "" || len(cookies[0]) > maxCredentialLen {
				return 0, "", Unauthenticated("invalid credentials", `error="invalid_request"`)
			}
			found(kindCookie, cookies[0])
		}
	}
	switch {
	case count == 0:
		return 0, "", Unauthenticated("authentication required", "")
	case count > 1:
		return 0, "", Unauthenticated("more than one credential", `error="invalid_request"`)
	}
	return kind, value, nil
}

// checkCrossSite is the CSRF defence for cookie-authenticated calls, which
// a browser attaches whoever made the page. It refuses:
//   - content types a page on any site may POST without a CORS preflight
//     (forms and text/plain);
//   - requests the browser marks as cross-site or same-site
//     (Sec-Fetch-Site) from an origin not in the allow-list;
//   - without Sec-Fetch-Site (older browsers), any Origin not in the
//     allow-list.
func (a *authenticator) checkCrossSite(h http.Header) error {
	mediaType, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	switch strings.ToLower(strings.TrimSpace(mediaType)) {
	case "text/plain", "application/x-www-form-urlencoded", "multipart/form-data":
		return crossSite("content type not allowed with a session cookie")
	}
	origin := h.Get("Origin")
	switch h.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return nil
	case "":
		if origin == "" || slices.Contains(a.allowedOrigins, origin) {
			return nil
		}
	default: // same-site, cross-site, or anything unknown
		if origin != "" && slices.Contains(a.allowedOrigins, origin) {
			return nil
		}
	}
	return crossSite("cross-site request refused")
}

func crossSite(msg string) *connect.Error {
	return connect.NewError(connect.CodePermissionDenied, errors.New(msg))
}

// Unauthenticated is the refusal for a missing or bad credential: code
// unauthenticated, message msg, and an RFC 6750 challenge with params (such
// as `error="invalid_token"`; "" for none) in WWW-Authenticate. Services
// that check credentials themselves (login, refresh) answer with it too.
func Unauthenticated(msg, params string) *connect.Error {
	err := connect.NewError(connect.CodeUnauthenticated, errors.New(msg))
	challenge := `Bearer realm="guard"`
	if params != "" {
		challenge += ", " + params
	}
	err.Meta().Set("WWW-Authenticate", challenge)
	return err
}

// Observed lets an interceptor outside authn learn, after the call, who the
// caller was. Outer interceptors cannot see the context authn derives, so
// authn also records the principal here.
type Observed struct {
	p *Principal
}

// UserID returns the authenticated user's id, or "" when the call was not
// authenticated.
func (o *Observed) UserID() string {
	if o == nil || o.p == nil {
		return ""
	}
	return o.p.UserID
}

type observedKey struct{}

// Identify records, for the access log and the audit log, the user that a
// public call acted for (a successful login). It authenticates nothing:
// the call's context gains no principal.
func Identify(ctx context.Context, userID string) {
	if o, ok := ctx.Value(observedKey{}).(*Observed); ok && o.p == nil {
		o.p = &Principal{UserID: userID}
	}
}

// Observe returns a context in which authn will record the principal, and
// the record. Interceptors that observe the same call share one record.
func Observe(ctx context.Context) (context.Context, *Observed) {
	if o, ok := ctx.Value(observedKey{}).(*Observed); ok {
		return ctx, o
	}
	o := &Observed{}
	return context.WithValue(ctx, observedKey{}, o), o
}
