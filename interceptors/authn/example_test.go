package authn_test

import (
	"context"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/internal/testservice"
)

func ExampleNewInterceptor() {
	table, err := testservice.Table()
	if err != nil {
		panic(err)
	}
	// A TokenVerifier: here a map from token to principal.
	tokens := testservice.Tokens{"t0k3n": {UserID: "u1", Roles: []string{"reader"}}}
	a := authn.NewInterceptor(table, tokens, authn.WithRealm("example"))

	svc := testservice.NewService(func(ctx context.Context, _, _ string) error {
		p, _ := authn.PrincipalFrom(ctx)
		fmt.Println("the handler sees", p.UserID)
		return nil
	})
	srv := testservice.Start(svc, connect.WithInterceptors(a))
	defer srv.Close()

	client := srv.Client(connect.ProtocolConnect)
	for _, h := range []http.Header{nil, testservice.Bearer("forged"), testservice.Bearer("t0k3n")} {
		res := testservice.Call(context.Background(), client, testservice.GetItem, h, "item-1")
		if res.Err != nil {
			fmt.Printf("%s: %s; WWW-Authenticate: %s\n", res.Code(), res.Message(), res.Meta.Get("WWW-Authenticate"))
			continue
		}
		fmt.Println(res.Code())
	}
	// Output:
	// unauthenticated: authentication required; WWW-Authenticate: Bearer realm="example"
	// unauthenticated: invalid credentials; WWW-Authenticate: Bearer realm="example", error="invalid_token"
	// the handler sees u1
	// ok
}
