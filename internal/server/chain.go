package server

import (
	"fmt"
	"log/slog"
	"net/http"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"connectrpc.com/validate"
	"github.com/connectguard/guard/interceptors/accesslog"
	"github.com/connectguard/guard/interceptors/audit"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/authz"
	"github.com/connectguard/guard/interceptors/ownership"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/interceptors/recovery"
	"github.com/connectguard/guard/service/auth"
)

// credentials verifies every kind of credential authn accepts.
type credentials interface {
	authn.TokenVerifier
	authn.APIKeyVerifier
	authn.SessionVerifier
}

// chainDeps are what the interceptors need.
type chainDeps struct {
	log   *slog.Logger
	table *policy.Table
	auth  credentials
	jwks  http.Handler // public signing keys; nil serves none
	// corsOrigins may call with the session cookie cross-site.
	corsOrigins []string
	limiter     *ratelimit.Limiter
	audit       audit.Recorder
	resolvers   map[string]ownership.Resolver
}

// chain returns the interceptors of every RPC, outermost first. This is the
// one place their order is written; each position is deliberate:
//
//  1. recovery: outermost, so a panic anywhere below (a check or the
//     handler) becomes a generic internal error naming the request id.
//  2. accesslog: sees the outcome of every call, refusals included.
//  3. audit: outside authn, so refused credentials on audited methods are
//     recorded as well as successes.
//  4. authn: credential -> principal; everything below may rely on it.
//  5. ratelimit: needs the principal for per-user budgets, and runs before
//     authorization, validation and the database so a flood costs little.
//  6. authz: roles and scopes, from the principal alone (no I/O).
//  7. validation: only callers allowed to call the method learn how its
//     input is checked; ids are well-formed before any lookup.
//  8. ownership: the one check that reads the database, on valid input.
//
// Request ids, client IPs, CORS, the per-IP limit and the body limit live in
// the HTTP layer (see handler), before any of this runs.
func chain(d chainDeps) ([]connect.Interceptor, error) {
	validator, err := protovalidate.New(protovalidate.WithMessageDescriptors(d.table.Inputs()...))
	if err != nil {
		return nil, fmt.Errorf("compile validation rules: %w", err)
	}
	own, err := ownership.NewInterceptor(d.table, d.resolvers)
	if err != nil {
		return nil, err
	}
	return []connect.Interceptor{
		recovery.NewInterceptor(d.log),
		accesslog.NewInterceptor(d.log),
		audit.NewInterceptor(d.table, d.audit, d.log),
		authn.NewInterceptor(d.table, d.auth,
			authn.WithAPIKeys(auth.APIKeyPrefix, d.auth),
			authn.WithSessionCookie(auth.CookieName, d.auth, d.corsOrigins)),
		ratelimit.NewInterceptor(d.table, d.limiter),
		authz.NewInterceptor(d.table),
		validate.NewInterceptor(validate.WithValidator(validator)),
		own,
	}, nil
}
