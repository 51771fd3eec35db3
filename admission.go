package guard

import (
	"context"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
)

// Admission decides, right after authentication and before any budget is
// spent or any check runs, whether a call may go on: a deny list of
// blocked users or networks (the client IP is clientip.From(ctx)). p is
// nil for a public method called without a credential.
//
// Admit runs on the request path of every call: it must be cheap and safe
// for concurrent use. A non-nil error is the caller's answer.
type Admission interface {
	Admit(ctx context.Context, p *authn.Principal) *connect.Error
}

// WithAdmission asks a whether each call may go on, right after authn
// (see Admission). By default every authenticated call goes on, and the
// chain has no step for it.
func WithAdmission(a Admission) Option {
	return optionFunc(func(c *config) { c.admission = a })
}

// admissionInterceptor refuses the calls its Admission refuses; a stream
// is asked once, when it starts.
type admissionInterceptor struct{ a Admission }

func (i admissionInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		if err := i.admit(ctx); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (i admissionInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i admissionInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := i.admit(ctx); err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// admit returns the Admission's refusal as an error, or nil: never a
// typed nil.
func (i admissionInterceptor) admit(ctx context.Context) error {
	p, _ := authn.PrincipalFrom(ctx)
	if err := i.a.Admit(ctx, p); err != nil {
		return err
	}
	return nil
}
