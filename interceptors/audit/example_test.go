package audit_test

import (
	"context"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/audit"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/internal/testservice"
)

// printer is a Recorder that prints events; a real one stores them.
type printer struct{}

func (printer) RecordAudit(_ context.Context, e audit.Event) error {
	fmt.Printf("audit: %s actor=%q code=%s ip=%s\n", e.Procedure, e.ActorID, e.Code, e.ClientIP)
	return nil
}

func ExampleNewInterceptor() {
	table, err := testservice.Table()
	if err != nil {
		panic(err)
	}
	tokens := testservice.Tokens{"t0k3n": {UserID: "u1", Roles: []string{"reader"}}}
	// audit sits outside authn, so refused credentials are recorded too.
	srv := testservice.Start(testservice.NewService(nil), connect.WithInterceptors(
		audit.NewInterceptor(table, printer{}, slog.Default()),
		authn.NewInterceptor(table, tokens)))
	defer srv.Close()

	client := srv.Client(connect.ProtocolConnect)
	ctx := context.Background()
	// LimitedPerUser has audit: true; GetItem does not.
	testservice.Call(ctx, client, testservice.LimitedPerUser, testservice.Bearer("t0k3n"), "item-1")
	testservice.Call(ctx, client, testservice.LimitedPerUser, testservice.Bearer("forged"), "item-1")
	testservice.Call(ctx, client, testservice.GetItem, testservice.Bearer("t0k3n"), "item-1")
	// Output:
	// audit: /guard.testservice.v1.TestService/LimitedPerUser actor="u1" code=ok ip=127.0.0.1
	// audit: /guard.testservice.v1.TestService/LimitedPerUser actor="" code=unauthenticated ip=127.0.0.1
}
