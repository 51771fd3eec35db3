package guard

import (
	"github.com/connectguard/guard/interceptors/tracing"
	"go.opentelemetry.io/otel/trace"
)

// WithTracerProvider traces each security decision (authentication, rate
// limit, authorization, validation, ownership) as a span of tp, a child of
// the call's span, with its outcome and never a credential (see package
// tracing). The call's span is the program's to start, outside the chain:
// give connectrpc.com/otelconnect's interceptor before HandlerOptions, as
// in connect.WithInterceptors(otel), then g.HandlerOptions()..., so that
// the access log also carries its trace and span ids. By default no
// decision is traced, at no cost.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) {
		if tp != nil {
			c.tracer = tracing.New(tp)
		}
	})
}
