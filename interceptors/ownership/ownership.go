// Package ownership checks, per request message, that the caller may
// access the resource the message names, as the method's policy declares.
//
// A caller without any access gets not_found, exactly as if the resource
// did not exist, so ids cannot be probed. A caller who may see the resource
// but not do what the method needs gets permission_denied.
package ownership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"
	policyv1 "github.com/connectguard/guard/gen/guard/policy/v1"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/interceptors/requestid"
	"google.golang.org/protobuf/proto"
)

// ErrNotFound is returned (wrapped) by a Resolver for an absent resource.
var ErrNotFound = errors.New("resource not found")

// Resolver tells the access a principal has on one resource of its kind:
// ACCESS_UNSPECIFIED for none. It may also return the resource it loaded
// to decide (or nil): the handler then finds it with Resource instead of
// reading it a second time. An error matching ErrNotFound answers
// not_found; a *connect.Error is passed to the caller as it is (it must be
// safe to show); any other error is the resolver's own failure, logged
// with the request id and answered with a generic internal error.
type Resolver interface {
	Access(ctx context.Context, id string, p *authn.Principal) (policyv1.Access, any, error)
}

type resourceKey struct{}

// Resource returns the resource that the check of this unary call loaded,
// if the resolver returned one of type T. Streaming calls carry none, since
// each message may name another resource.
func Resource[T any](ctx context.Context) (T, bool) {
	r, ok := ctx.Value(resourceKey{}).(T)
	return r, ok
}

// Interceptor checks ownership.
type Interceptor struct {
	table     *policy.Table
	resolvers map[string]Resolver
	log       *slog.Logger
	observer  Observer // nil: denials are not reported
}

// NewInterceptor returns an Interceptor for table, with a resolver per
// resource kind. It fails when the table names a kind without a resolver.
func NewInterceptor(table *policy.Table, resolvers map[string]Resolver, opts ...Option) (*Interceptor, error) {
	for _, kind := range table.Resources() {
		if resolvers[kind] == nil {
			return nil, fmt.Errorf("ownership: no resolver for resource kind %q", kind)
		}
	}
	i := &Interceptor{table: table, resolvers: resolvers, log: slog.Default()}
	for _, o := range opts {
		o.apply(i)
	}
	return i, nil
}

// WrapUnary implements connect.Interceptor.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		loaded, err := i.check(ctx, req.Spec().Procedure, req.Any())
		if err != nil {
			return nil, err
		}
		if loaded != nil {
			ctx = context.WithValue(ctx, resourceKey{}, loaded)
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor: every received
// message is checked.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(ctx, &stream{StreamingHandlerConn: conn, ctx: ctx, i: i})
	}
}

type stream struct {
	connect.StreamingHandlerConn
	ctx context.Context
	i   *Interceptor
}

func (s *stream) Receive(msg any) error {
	if err := s.StreamingHandlerConn.Receive(msg); err != nil {
		return err
	}
	_, err := s.i.check(s.ctx, s.Spec().Procedure, msg)
	return err
}

// check returns the resource the resolver loaded, if any, when the call
// may proceed.
func (i *Interceptor) check(ctx context.Context, procedure string, msg any) (any, error) {
	rule, ok := i.table.Lookup(procedure)
	if !ok {
		return nil, policy.ErrNoPolicy()
	}
	own := rule.Ownership
	if own == nil {
		return nil, nil
	}
	p, err := authn.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if p.HasAnyRole(own.BypassRoles) {
		return nil, nil
	}
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	// Made only when refusing: an allowed call allocates no error.
	notFound := func() error { return connect.NewError(connect.CodeNotFound, fmt.Errorf("%s not found", own.Resource)) }
	id := own.ResourceID(m.ProtoReflect())
	if id == "" {
		return nil, notFound()
	}
	have, loaded, err := i.resolvers[own.Resource].Access(ctx, id, p)
	switch {
	case errors.Is(err, ErrNotFound):
		i.refused(ctx, p, own.Resource, id)
		return nil, notFound()
	case err != nil:
		if ce := new(connect.Error); errors.As(err, &ce) {
			return nil, ce
		}
		i.log.ErrorContext(ctx, "ownership check failed", "procedure", procedure, "resource", own.Resource,
			"request_id", requestid.From(ctx), "error", err)
		return nil, requestid.InternalError(ctx)
	case have == policyv1.Access_ACCESS_UNSPECIFIED:
		i.denied(procedure)
		i.refused(ctx, p, own.Resource, id)
		return nil, notFound()
	case have < own.Access:
		i.denied(procedure)
		i.refused(ctx, p, own.Resource, id)
		return nil, connect.NewError(connect.CodePermissionDenied,
			fmt.Errorf("%s access to this %s is required", policy.AccessName(own.Access), own.Resource))
	}
	return loaded, nil
}

// refused reports a refusal on the resource id to a RefusalObserver.
func (i *Interceptor) refused(ctx context.Context, p *authn.Principal, resource, id string) {
	if o, ok := i.observer.(RefusalObserver); ok {
		o.ObserveRefusal(ctx, p, resource, id)
	}
}

// denied reports a refusal of a resource that exists to the observer.
func (i *Interceptor) denied(procedure string) {
	if i.observer != nil {
		i.observer.ObserveDenial(procedure, ReasonOwnership)
	}
}
