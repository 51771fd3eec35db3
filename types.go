package guard

import (
	"context"

	policyv1 "github.com/connectguard/guard/gen/guard/policy/v1"
	"github.com/connectguard/guard/interceptors/audit"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/ownership"
)

// The types a service implements or reads when it adopts Guard, under the
// one import. Each is the interceptor package's own type.
type (
	// Principal is an authenticated caller.
	Principal = authn.Principal
	// TokenVerifier checks bearer tokens.
	TokenVerifier = authn.TokenVerifier
	// APIKeyVerifier checks API keys (WithAPIKeys).
	APIKeyVerifier = authn.APIKeyVerifier
	// SessionVerifier checks session cookies (WithSessionCookie).
	SessionVerifier = authn.SessionVerifier
	// Method says how a Principal authenticated.
	Method = authn.Method
	// Resolver tells the access a caller has on a resource.
	Resolver = ownership.Resolver
	// Access is an access level of an ownership policy.
	Access = policyv1.Access
	// AuditRecorder stores audit events.
	AuditRecorder = audit.Recorder
	// AuditEvent is one audited call.
	AuditEvent = audit.Event
)

// Access levels, weakest first: a Resolver answers with one.
const (
	AccessNone  = policyv1.Access_ACCESS_UNSPECIFIED
	AccessRead  = policyv1.Access_ACCESS_READ
	AccessWrite = policyv1.Access_ACCESS_WRITE
	AccessOwner = policyv1.Access_ACCESS_OWNER
)

// Errors verifiers and resolvers return for what the caller got wrong; any
// other error is treated as the server's own failure (internal, logged).
var (
	// ErrInvalid: a TokenVerifier's answer for an unknown, forged or
	// revoked credential.
	ErrInvalid = authn.ErrInvalid
	// ErrExpired: a TokenVerifier's answer for an expired credential.
	ErrExpired = authn.ErrExpired
	// ErrNotFound: a Resolver's answer for an absent resource.
	ErrNotFound = ownership.ErrNotFound
)

// PrincipalFrom returns the authenticated caller of a call.
func PrincipalFrom(ctx context.Context) (*Principal, bool) { return authn.PrincipalFrom(ctx) }

// NewContext returns ctx with p as the authenticated caller, for tests of
// handlers that then need no credential.
func NewContext(ctx context.Context, p *Principal) context.Context { return authn.NewContext(ctx, p) }

// Resource returns the resource the ownership check of a unary call
// loaded (the second result of a Resolver), if it is of type T, so the
// handler need not read it again.
func Resource[T any](ctx context.Context) (T, bool) { return ownership.Resource[T](ctx) }
