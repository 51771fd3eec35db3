// Package authz enforces the roles and scopes of each method's policy.
//
// It runs after authn: a non-public call without a principal is refused
// with unauthenticated, so a misordered chain fails closed.
package authz

import (
	"context"
	"errors"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/internal/callcheck"
	"github.com/connectguard/guard/interceptors/policy"
)

// Interceptor checks roles (any-of) and scopes (all-of, scoped credentials only).
type Interceptor struct {
	callcheck.Interceptor
	observer Observer // nil: denials are not reported
}

// NewInterceptor returns an Interceptor enforcing table.
func NewInterceptor(table *policy.Table, opts ...Option) *Interceptor {
	i := &Interceptor{}
	for _, o := range opts {
		o.apply(i)
	}
	i.Interceptor = callcheck.New(func(ctx context.Context, call callcheck.Call) (context.Context, error) {
		rule, ok := table.Lookup(call.Spec.Procedure)
		if !ok {
			return ctx, policy.ErrNoPolicy()
		}
		reason, err := check(ctx, rule)
		if reason != "" && i.observer != nil {
			i.observer.ObserveDenial(rule.Procedure, reason)
		}
		return ctx, err
	})
	return i
}

// Check applies rule to the principal in ctx.
func Check(ctx context.Context, rule *policy.Rule) error {
	_, err := check(ctx, rule)
	return err
}

// check is Check, and the reason (ReasonRole, ReasonScope) of a
// permission_denied refusal; "" otherwise.
func check(ctx context.Context, rule *policy.Rule) (string, error) {
	if rule.Public {
		return "", nil
	}
	p, err := authn.Caller(ctx)
	if err != nil {
		return "", err
	}
	if !p.HasAnyRole(rule.Roles) {
		return ReasonRole, connect.NewError(connect.CodePermissionDenied,
			deniedError("requires one of the roles: "+strings.Join(rule.Roles, ", ")))
	}
	if p.Scoped {
		for _, s := range rule.Scopes {
			if !slices.Contains(p.Scopes, s) {
				return ReasonScope, connect.NewError(connect.CodePermissionDenied,
					deniedError("credential lacks the scopes: "+strings.Join(rule.Scopes, ", ")))
			}
		}
	}
	return "", nil
}

// ErrDenied is in the chain of every refusal authz makes (errors.Is), so
// that the interceptors outside it (audit) can tell a missing role or
// scope from other permission_denied answers.
var ErrDenied = errors.New("authz: denied")

// deniedError is a refusal by authz: its text is the message the caller
// sees, and it is ErrDenied.
type deniedError string

func (e deniedError) Error() string { return string(e) }

// Is reports whether target is ErrDenied.
func (e deniedError) Is(target error) bool { return target == ErrDenied }
