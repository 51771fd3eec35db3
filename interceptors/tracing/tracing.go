// Package tracing makes an OpenTelemetry span for each security decision
// of the chain (authentication, rate limit, authorization, validation,
// ownership), a child of the call's span, saying what was decided:
//
//	guard.decision  the check: "authn", "ratelimit", "authz", "validate", "ownership"
//	guard.outcome   "allowed" or "refused"
//	guard.code      the Connect code of a refusal, such as "unauthenticated"
//	guard.reason    its message, which the error contract keeps safe to show a stranger
//
// and, where they apply, guard.auth.method and enduser.id (an allowed
// authn decision: how the caller authenticated and the user id),
// guard.violations (a refused validation: "field.path:rule_id" of each
// violation) and guard.retry_after_ms (a refused rate limit). No span
// carries a credential, a header or a message body: the attributes are
// read from the decision's outcome, never from the request.
//
// A decision span covers the check alone: it ends when the check passes
// the call on, or refuses it. Decisions are traced only inside a recording
// span, the call's span that an interceptor such as otelconnect starts
// outside the chain; a call that is not sampled costs one context lookup
// per check. On streams, checks made per message (validation, ownership
// of each request) are not traced; the decision spans cover what is
// decided when the stream opens.
//
// The package depends on the OpenTelemetry API alone; the SDK, its
// sampler and exporter are the program's to choose.
package tracing

import (
	"context"
	"errors"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

// ScopeName is the instrumentation scope of the decision spans.
const ScopeName = "github.com/connectguard/guard/interceptors/tracing"

// SpanPrefix starts the name of each decision span, followed by the
// decision: "guard.decision.authn".
const SpanPrefix = "guard.decision."

// The attributes of decision spans.
const (
	AttrDecision   = attribute.Key("guard.decision")
	AttrOutcome    = attribute.Key("guard.outcome")
	AttrCode       = attribute.Key("guard.code")
	AttrReason     = attribute.Key("guard.reason")
	AttrAuthMethod = attribute.Key("guard.auth.method")
	AttrUserID     = attribute.Key("enduser.id")
	AttrViolations = attribute.Key("guard.violations")
	AttrRetryAfter = attribute.Key("guard.retry_after_ms")
)

// Outcomes, the values of AttrOutcome.
const (
	Allowed = "allowed"
	Refused = "refused"
)

// Tracer makes the decision spans of a chain. Create one with New.
type Tracer struct {
	tracer trace.Tracer
}

// New returns a Tracer whose spans tp makes.
func New(tp trace.TracerProvider) *Tracer {
	return &Tracer{tracer: tp.Tracer(ScopeName)}
}

// Around returns check between the two interceptors that trace its
// decision, named name, to put in a chain in its place. A nil Tracer
// returns check alone: tracing that is not configured costs nothing.
func (t *Tracer) Around(name string, check connect.Interceptor) []connect.Interceptor {
	if t == nil {
		return []connect.Interceptor{check}
	}
	o := &open{t: t, name: name, span: SpanPrefix + name, attr: AttrDecision.String(name),
		opts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}}
	return []connect.Interceptor{o, check, passed{}}
}

// decision is one traced decision of a call, from open to passed.
type decision struct {
	span   trace.Span
	parent trace.Span
	name   string
	attr   attribute.KeyValue // AttrDecision, set with the outcome: one SetAttributes a span
	done   bool
}

type decisionKey struct{}

// decisionContext is the context of the check: the decision's span's
// context, and the decision under decisionKey, in one allocation.
type decisionContext struct {
	context.Context
	d decision
}

func (c *decisionContext) Value(key any) any {
	if _, ok := key.(decisionKey); ok {
		return &c.d
	}
	return c.Context.Value(key)
}

// open starts the span of a decision before the check runs, and ends it
// as refused if the check returns without passing the call on.
type open struct {
	t          *Tracer
	name, span string
	attr       attribute.KeyValue
	opts       []trace.SpanStartOption // made once: options allocate
}

func (o *open) start(ctx context.Context) (context.Context, *decision) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, nil
	}
	ctx, span := o.t.tracer.Start(ctx, o.span, o.opts...)
	c := &decisionContext{Context: ctx, d: decision{span: span, parent: parent, name: o.name, attr: o.attr}}
	return c, &c.d
}

// finish ends d as refused with err, unless the call went on.
func (d *decision) finish(err error) {
	if d == nil || d.done {
		return
	}
	d.done = true
	if err == nil { // a check that answered without calling the next one
		d.span.SetAttributes(d.attr, allowed)
		d.span.End()
		return
	}
	d.span.SetAttributes(refusal(d.attr, err)...)
	d.span.SetStatus(codes.Error, connect.CodeOf(err).String())
	d.span.End()
}

// panicked ends d if the check panicked.
func (d *decision) panicked() {
	if d == nil || d.done {
		return
	}
	d.done = true
	d.span.SetAttributes(d.attr, AttrOutcome.String(Refused), AttrCode.String(connect.CodeInternal.String()), AttrReason.String("panic"))
	d.span.SetStatus(codes.Error, "panic")
	d.span.End()
}

func (o *open) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, d := o.start(ctx)
		defer d.panicked()
		res, err := next(ctx, req)
		d.finish(err)
		return res, err
	}
}

func (o *open) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (o *open) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, d := o.start(ctx)
		defer d.panicked()
		err := next(ctx, conn)
		d.finish(err)
		return err
	}
}

var allowed = AttrOutcome.String(Allowed)

// passed ends the span of the decision the check has just passed, as
// allowed, and gives the rest of the chain the call's span back.
type passed struct{}

func (passed) pass(ctx context.Context) context.Context {
	d, ok := ctx.Value(decisionKey{}).(*decision)
	if !ok || d.done {
		return ctx
	}
	d.done = true
	switch p, ok := authn.PrincipalFrom(ctx); {
	case d.name != "authn":
		d.span.SetAttributes(d.attr, allowed)
	case ok:
		d.span.SetAttributes(d.attr, allowed, AttrAuthMethod.String(p.Method.String()), AttrUserID.String(p.UserID))
	default:
		d.span.SetAttributes(d.attr, allowed, AttrAuthMethod.String(authn.Method(0).String()))
	}
	d.span.End()
	return trace.ContextWithSpan(ctx, d.parent)
}

func (p passed) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		return next(p.pass(ctx), req)
	}
}

func (passed) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (p passed) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(p.pass(ctx), conn)
	}
}

// refusal returns the attributes of a refused decision, read from the
// error the check returned: its code, its message (safe to show a
// stranger, by the error contract) and what its details say.
func refusal(decision attribute.KeyValue, err error) []attribute.KeyValue {
	attrs := []attribute.KeyValue{decision, AttrOutcome.String(Refused), AttrCode.String(connect.CodeOf(err).String())}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return attrs
	}
	attrs = append(attrs, AttrReason.String(ce.Message()))
	for _, detail := range ce.Details() {
		msg, derr := detail.Value()
		if derr != nil {
			continue
		}
		switch m := msg.(type) {
		case *validate.Violations:
			paths := make([]string, 0, len(m.GetViolations()))
			for _, v := range m.GetViolations() {
				paths = append(paths, protovalidate.FieldPathString(v.GetField())+":"+v.GetRuleId())
			}
			attrs = append(attrs, AttrViolations.StringSlice(paths))
		case *errdetails.RetryInfo:
			attrs = append(attrs, AttrRetryAfter.Int64(m.GetRetryDelay().AsDuration().Milliseconds()))
		}
	}
	return attrs
}
