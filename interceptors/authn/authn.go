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

// ErrExpired is returned (wrapped) by a TokenVerifier for a credential that
// was valid but has expired; callers are told so, and nothing more.
var ErrExpired = errors.New("credential expired")

// TokenVerifier checks a bearer token and says who presented it.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (*Principal, error)
}

// maxTokenLen bounds what is handed to a verifier.
const maxTokenLen = 4096

// Interceptor authenticates calls.
type Interceptor struct {
	callcheck.Interceptor
}

// NewInterceptor returns an Interceptor that authenticates every
// non-public method of table with tokens.
func NewInterceptor(table *policy.Table, tokens TokenVerifier) *Interceptor {
	a := &authenticator{table: table, tokens: tokens}
	return &Interceptor{callcheck.New(a.check)}
}

type authenticator struct {
	table  *policy.Table
	tokens TokenVerifier
}

func (a *authenticator) check(ctx context.Context, call callcheck.Call) (context.Context, error) {
	rule, ok := a.table.Lookup(call.Spec.Procedure)
	if !ok {
		return ctx, callcheck.ErrNoPolicy()
	}
	if rule.Public {
		return ctx, nil
	}
	token, err := bearerToken(call.Header)
	if err != nil {
		return ctx, err
	}
	p, verr := a.tokens.VerifyToken(ctx, token)
	switch {
	case errors.Is(verr, ErrExpired):
		return ctx, refuse("credentials expired", `error="invalid_token", error_description="expired"`)
	case verr != nil || p == nil:
		return ctx, refuse("invalid credentials", `error="invalid_token"`)
	}
	if o, ok := ctx.Value(observedKey{}).(*Observed); ok {
		o.p = p
	}
	return context.WithValue(ctx, principalKey{}, p), nil
}

func bearerToken(h http.Header) (string, error) {
	values := h.Values("Authorization")
	switch {
	case len(values) == 0:
		return "", refuse("authentication required", "")
	case len(values) > 1:
		return "", refuse("more than one credential", `error="invalid_request"`)
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > maxTokenLen {
		return "", refuse("invalid credentials", `error="invalid_request"`)
	}
	return token, nil
}

// refuse builds an unauthenticated error with an RFC 6750 challenge.
func refuse(msg, params string) *connect.Error {
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

// Observe returns a context in which authn will record the principal, and
// the record. Interceptors that observe the same call share one record.
func Observe(ctx context.Context) (context.Context, *Observed) {
	if o, ok := ctx.Value(observedKey{}).(*Observed); ok {
		return ctx, o
	}
	o := &Observed{}
	return context.WithValue(ctx, observedKey{}, o), o
}
