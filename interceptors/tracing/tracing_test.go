package tracing_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/authz"
	"github.com/connectguard/guard/interceptors/internal/testservice"
	"github.com/connectguard/guard/interceptors/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

var tokens = testservice.Tokens{
	"reader-secret-token": {UserID: "u-reader", Roles: []string{"reader"}, Method: authn.MethodAccessToken},
}

// start serves the test service behind the call's span (otelconnect),
// then authn and authz, each traced, and returns the server and the
// exporter that keeps the spans.
func start(t *testing.T, tp trace.TracerProvider) *testservice.Server {
	t.Helper()
	table, err := testservice.Table()
	if err != nil {
		t.Fatal(err)
	}
	spans, err := otelconnect.NewInterceptor(otelconnect.WithTracerProvider(tp), otelconnect.WithoutMetrics())
	if err != nil {
		t.Fatal(err)
	}
	tr := tracing.New(tp)
	chain := []connect.Interceptor{spans}
	chain = append(chain, tr.Around("authn", authn.NewInterceptor(table, tokens))...)
	chain = append(chain, tr.Around("authz", authz.NewInterceptor(table))...)
	srv := testservice.Start(testservice.NewService(nil), connect.WithInterceptors(chain...))
	t.Cleanup(srv.Close)
	return srv
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

// TestDecisionSpans: unary and streaming calls over every protocol make
// one span per decision taken, children of the call's span, saying what
// was decided; none carries the token.
func TestDecisionSpans(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, procedure, token string
		want                   []string // decision=outcome[:code], in order
	}{
		{"allowed", testservice.GetItem, "reader-secret-token", []string{"authn=allowed", "authz=allowed"}},
		{"no_credential", testservice.GetItem, "", []string{"authn=refused:unauthenticated"}},
		{"bad_credential", testservice.GetItem, "forged-secret-token", []string{"authn=refused:unauthenticated"}},
		{"permission_denied", testservice.UpdateItem, "reader-secret-token", []string{"authn=allowed", "authz=refused:permission_denied"}},
		{"public", testservice.Ping, "", []string{"authn=allowed", "authz=allowed"}},
		{"server_stream", testservice.ListItems, "reader-secret-token", []string{"authn=allowed", "authz=allowed"}},
		{"bidi_stream", testservice.SyncItems, "reader-secret-token", []string{"authn=allowed", "authz=allowed"}},
		{"bidi_stream_refused", testservice.SyncItems, "forged-secret-token", []string{"authn=refused:unauthenticated"}},
	}
	for _, tt := range tests {
		for _, protocol := range testservice.Protocols() {
			t.Run(tt.name+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				exp := tracetest.NewInMemoryExporter()
				tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
				srv := start(t, tp)
				h := testservice.Bearer(tt.token)
				if tt.token == "" {
					h = nil
				}
				testservice.Call(context.Background(), srv.Client(protocol), tt.procedure, h, "item-1")
				var call tracetest.SpanStub
				var got []string
				for _, s := range exp.GetSpans() {
					if s.SpanKind == trace.SpanKindServer {
						call = s
					}
				}
				for _, s := range exp.GetSpans() {
					name, ok := strings.CutPrefix(s.Name, tracing.SpanPrefix)
					if !ok {
						continue
					}
					if s.Parent.SpanID() != call.SpanContext.SpanID() {
						t.Errorf("decision %s is not a child of the call's span", name)
					}
					d := name + "=" + attr(s, string(tracing.AttrOutcome))
					if c := attr(s, string(tracing.AttrCode)); c != "" {
						d += ":" + c
					}
					got = append(got, d)
					for _, a := range s.Attributes {
						if strings.Contains(a.Value.String(), "secret-token") {
							t.Errorf("decision %s carries the token in %s", name, a.Key)
						}
					}
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("got decisions %v, want %v", got, tt.want)
				}
			})
		}
	}
}

// TestNotRecording: inside a call that is not sampled, or with a no-op
// provider, no decision span is made; a nil Tracer leaves the check alone.
func TestNotRecording(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	never := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.NeverSample()))
	for _, tp := range []trace.TracerProvider{never, noop.NewTracerProvider()} {
		srv := start(t, tp)
		res := testservice.Call(context.Background(), srv.Client(connect.ProtocolConnect), testservice.UpdateItem,
			testservice.Bearer("reader-secret-token"), "item-1")
		if res.Code() != "permission_denied" {
			t.Errorf("got %s, want permission_denied", res.Code())
		}
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("got %d spans of calls not sampled, want none", n)
	}
	check := authz.NewInterceptor(nil)
	if got := (*tracing.Tracer)(nil).Around("authz", check); len(got) != 1 || got[0] != check {
		t.Errorf("a nil Tracer returned %d interceptors, want the check alone", len(got))
	}
}
