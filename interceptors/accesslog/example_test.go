package accesslog_test

import (
	"context"
	"log/slog"
	"os"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/accesslog"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/internal/testservice"
)

func ExampleNewInterceptor() {
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		// Leave out what changes from run to run.
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "duration", "request_id":
				return slog.Attr{}
			}
			return a
		},
	}))
	table, err := testservice.Table()
	if err != nil {
		panic(err)
	}
	tokens := testservice.Tokens{"t0k3n": {UserID: "u1", Roles: []string{"reader"}}}
	// accesslog sits outside authn, so refused calls are logged too.
	srv := testservice.Start(testservice.NewService(nil), connect.WithInterceptors(
		accesslog.NewInterceptor(log),
		authn.NewInterceptor(table, tokens)))
	defer srv.Close()

	ctx := context.Background()
	testservice.Call(ctx, srv.Client(connect.ProtocolConnect), testservice.GetItem, testservice.Bearer("t0k3n"), "item-1")
	testservice.Call(ctx, srv.Client(connect.ProtocolGRPC), testservice.GetItem, nil, "item-1")
	// Output:
	// level=INFO msg=rpc procedure=/guard.testservice.v1.TestService/GetItem protocol=connect code=ok user_id=u1 auth=none client_ip=127.0.0.1
	// level=WARN msg=rpc procedure=/guard.testservice.v1.TestService/GetItem protocol=grpc code=unauthenticated user_id=anonymous auth=none client_ip=127.0.0.1
}
