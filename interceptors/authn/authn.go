// Package authn turns the credential on a call into a Principal in the
// context, or refuses the call with unauthenticated.
//
// Public methods (per the policy table) are not authenticated at all: a
// credential sent to them is ignored, never half-checked. Every other
// method needs exactly one credential; two at once are refused, never
// merged, and there is no fallback to anonymous.
//
// A verifier says a credential is bad with ErrInvalid or ErrExpired, and
// only those become unauthenticated. Any other error (a database that is
// down) becomes internal, logged with the request id: clients are not told
// to log in again because the server failed.
//
// Refusals carry an RFC 6750 challenge (WWW-Authenticate) on Connect and
// plain HTTP responses only: in gRPC and gRPC-Web it would be a trailer,
// where HTTP forbids it.
package authn

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/interceptors/requestid"
	"github.com/connectguard/guard/internal/outcome"
)

// Method says how a principal authenticated.
type Method int

// The ways to authenticate.
const (
	MethodAccessToken Method = iota + 1
	MethodAPIKey
	MethodSessionCookie
)

// String names m as logs and traces write it: "access_token", "api_key",
// "session_cookie", or "none" for a call that did not authenticate.
func (m Method) String() string {
	switch m {
	case MethodAccessToken:
		return "access_token"
	case MethodAPIKey:
		return "api_key"
	case MethodSessionCookie:
		return "session_cookie"
	}
	return "none"
}

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

// NewContext returns ctx carrying p as the authenticated caller, as the
// interceptor would. It is for tests of handlers, which then need no
// credential; nothing a client sends reaches it.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// Caller returns the principal of an authenticated call, or the
// unauthenticated refusal when there is none: code behind authn that needs
// a caller fails closed if the chain was wired without it. The refusal
// carries no challenge of its own: the Interceptor adds the one the
// protocol allows, and a chain without it must not put one in a gRPC
// trailer.
func Caller(ctx context.Context) (*Principal, error) {
	if p, ok := PrincipalFrom(ctx); ok {
		return p, nil
	}
	return nil, connect.NewError(connect.CodeUnauthenticated, errAuthenticationRequired)
}

var errAuthenticationRequired = errors.New("authentication required")

// The errors a verifier returns (wrapped or not) for a bad credential. Any
// other error is the verifier's own failure.
var (
	// ErrInvalid: the credential is unknown, forged, revoked, or its user
	// is disabled. The caller is told only that it is invalid.
	ErrInvalid = errors.New("invalid credential")
	// ErrExpired: the credential was valid but has expired; the caller is
	// told so, and nothing more.
	ErrExpired = errors.New("credential expired")
)

// TokenVerifier checks a bearer token and says who presented it. It
// returns a principal, or an error matching ErrInvalid or ErrExpired for a
// bad token, or any other error when it could not tell.
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

// Interceptor authenticates calls. It wraps the whole call, public
// methods included, so that every unauthenticated error leaving it (its
// own, or a handler's such as a failed login) carries the challenge its
// protocol allows.
type Interceptor struct {
	table  *policy.Table
	tokens TokenVerifier

	keyPrefix string
	keys      APIKeyVerifier

	cookieName     string
	sessions       SessionVerifier
	allowedOrigins []string

	realm string
	log   *slog.Logger
}

// NewInterceptor returns an Interceptor that authenticates every
// non-public method of table: bearer tokens with tokens (nil: bearer
// tokens are refused), and API keys and session cookies when the options
// enable them.
func NewInterceptor(table *policy.Table, tokens TokenVerifier, opts ...Option) *Interceptor {
	a := &Interceptor{table: table, tokens: tokens, log: slog.Default()}
	for _, o := range opts {
		o.apply(a)
	}
	return a
}

// WrapUnary implements connect.Interceptor.
func (a *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		protocol := req.Peer().Protocol
		ctx, err := a.check(ctx, req.Spec().Procedure, req.Header())
		if err != nil {
			return nil, a.challenge(err, protocol)
		}
		res, err := next(ctx, req)
		return res, a.challenge(err, protocol)
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (a *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (a *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		protocol := conn.Peer().Protocol
		ctx, err := a.check(ctx, conn.Spec().Procedure, conn.RequestHeader())
		if err != nil {
			return a.challenge(err, protocol)
		}
		return a.challenge(next(ctx, conn), protocol)
	}
}

// Refuse is the part of the check that needs no verifier and no body: a
// request to a non-public procedure of the table with no credential, two,
// or a malformed one. It returns the refusal, with the challenge r's
// protocol allows, or nil when the request may go on (the interceptor then
// checks it fully). Procedures the table does not know are left to the
// router and the interceptor. The HTTP layer calls it so that such calls
// are refused before their body is read.
func (a *Interceptor) Refuse(r *http.Request) *connect.Error {
	rule, ok := a.table.Lookup(r.URL.Path)
	if !ok || rule.Public {
		return nil
	}
	if _, _, err := a.credential(r.Header); err != nil {
		var ce *connect.Error
		if errors.As(a.challenge(err, outcome.Protocol(r)), &ce) {
			return ce
		}
	}
	return nil
}

type credentialKind int

const (
	kindToken credentialKind = iota + 1
	kindAPIKey
	kindCookie
)

func (a *Interceptor) check(ctx context.Context, procedure string, h http.Header) (context.Context, error) {
	rule, ok := a.table.Lookup(procedure)
	if !ok {
		return ctx, policy.ErrNoPolicy()
	}
	if rule.Public {
		return ctx, nil
	}
	kind, value, err := a.credential(h)
	if err != nil {
		return ctx, err
	}
	var p *Principal
	switch kind {
	case kindToken:
		if a.tokens == nil {
			return ctx, Unauthenticated("invalid credentials", `error="invalid_token"`)
		}
		p, err = a.tokens.VerifyToken(ctx, value)
	case kindAPIKey:
		p, err = a.keys.VerifyAPIKey(ctx, value)
	case kindCookie:
		if cerr := a.checkCrossSite(h); cerr != nil {
			return ctx, cerr
		}
		p, err = a.sessions.VerifySession(ctx, value)
	}
	switch {
	case errors.Is(err, ErrExpired):
		return ctx, Unauthenticated("credentials expired", `error="invalid_token", error_description="expired"`)
	case errors.Is(err, ErrInvalid), err == nil && p == nil:
		return ctx, Unauthenticated("invalid credentials", `error="invalid_token"`)
	case err != nil:
		return ctx, a.internal(ctx, procedure, err)
	}
	if o, ok := ctx.Value(observedKey{}).(*Observed); ok {
		o.p = p
	}
	return NewContext(ctx, p), nil
}

// internal logs a verifier's own failure and returns the generic refusal.
func (a *Interceptor) internal(ctx context.Context, procedure string, err error) error {
	a.log.ErrorContext(ctx, "credential check failed", "procedure", procedure, "request_id", requestid.From(ctx), "error", err)
	return requestid.InternalError(ctx)
}

// credential finds the one credential of a call. Two credentials, even
// of different kinds or naming the same user, are refused: merging them
// would let one vouch for the other.
func (a *Interceptor) credential(h http.Header) (credentialKind, string, error) {
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
		switch keys := h.Values("X-Api-Key"); { // the canonical spelling costs no allocation
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
func (a *Interceptor) checkCrossSite(h http.Header) error {
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

// challengeHeader carries the RFC 6750 challenge.
const challengeHeader = "WWW-Authenticate"

// Unauthenticated is the refusal for a missing or bad credential: code
// unauthenticated, message msg, and an RFC 6750 Bearer challenge with
// params (such as `error="invalid_token"`; "" for none). Services that
// check credentials themselves (login, refresh) answer with it too; the
// Interceptor adds the realm to the challenge, or removes it where the
// protocol forbids it.
func Unauthenticated(msg, params string) *connect.Error {
	err := connect.NewError(connect.CodeUnauthenticated, errors.New(msg))
	err.Meta().Set(challengeHeader, strings.TrimSpace("Bearer "+params))
	return err
}

// challenge finishes the challenge of an unauthenticated err for protocol:
// on Connect, `Bearer realm="<realm>", <params>` (a 401 must carry one,
// RFC 9110, so an error made without one gets a bare `Bearer`); on gRPC
// and gRPC-Web none, since there it would travel as a trailer, where HTTP
// forbids it.
func (a *Interceptor) challenge(err error, protocol string) error {
	if err == nil {
		return nil // before ce, which would escape to the heap on every call
	}
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeUnauthenticated {
		return err
	}
	if protocol != connect.ProtocolConnect {
		ce.Meta().Del(challengeHeader)
		return err
	}
	v := ce.Meta().Get(challengeHeader)
	if v == "" {
		v = "Bearer"
		ce.Meta().Set(challengeHeader, v)
	}
	if a.realm != "" && !strings.Contains(v, "realm=") {
		params := strings.TrimSpace(strings.TrimPrefix(v, "Bearer"))
		v = `Bearer realm="` + a.realm + `"`
		if params != "" {
			v += ", " + params
		}
		ce.Meta().Set(challengeHeader, v)
	}
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

// Method returns how the caller authenticated; a call that did not
// authenticate (a public one, a login included) has the zero Method.
func (o *Observed) Method() Method {
	if o == nil || o.p == nil {
		return 0
	}
	return o.p.Method
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
