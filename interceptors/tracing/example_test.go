package tracing_test

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/authz"
	"github.com/connectguard/guard/interceptors/internal/testservice"
	"github.com/connectguard/guard/interceptors/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func ExampleTracer_Around() {
	table, err := testservice.Table()
	if err != nil {
		panic(err)
	}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	// The call's span, outside the chain; then each check between the
	// interceptors that trace its decision.
	spans, err := otelconnect.NewInterceptor(otelconnect.WithTracerProvider(tp), otelconnect.WithoutMetrics())
	if err != nil {
		panic(err)
	}
	tr := tracing.New(tp)
	chain := []connect.Interceptor{spans}
	chain = append(chain, tr.Around("authn", authn.NewInterceptor(table, testservice.Tokens{
		"reader-token": {UserID: "u1", Roles: []string{"reader"}, Method: authn.MethodAccessToken},
	}))...)
	chain = append(chain, tr.Around("authz", authz.NewInterceptor(table))...)
	srv := testservice.Start(testservice.NewService(nil), connect.WithInterceptors(chain...))
	defer srv.Close()

	// UpdateItem needs the role writer: the reader is authenticated, then refused.
	testservice.Call(context.Background(), srv.Client(connect.ProtocolConnect), testservice.UpdateItem,
		testservice.Bearer("reader-token"), "item-1")
	for _, s := range exp.GetSpans() {
		fmt.Print(s.Name)
		for _, a := range s.Attributes {
			switch a.Key {
			case tracing.AttrOutcome, tracing.AttrCode, tracing.AttrAuthMethod, tracing.AttrUserID:
				fmt.Printf(" %s=%s", a.Key, a.Value.String())
			}
		}
		fmt.Println()
	}
	// Output:
	// guard.decision.authn guard.outcome=allowed guard.auth.method=access_token enduser.id=u1
	// guard.decision.authz guard.outcome=refused guard.code=permission_denied
	// guard.testservice.v1.TestService/UpdateItem
}
