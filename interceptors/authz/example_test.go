package authz_test

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/authz"
	"github.com/connectguard/guard/interceptors/internal/testservice"
)

func ExampleNewInterceptor() {
	table, err := testservice.Table()
	if err != nil {
		panic(err)
	}
	tokens := testservice.Tokens{
		"reader-session": {UserID: "u1", Roles: []string{"reader"}},
		"writer-session": {UserID: "u2", Roles: []string{"writer"}},
		// An API key of u2 that may only read.
		"writer-key": {UserID: "u2", Roles: []string{"writer"}, Scoped: true, Scopes: []string{"items:read"}},
	}
	// authz runs after authn, which puts the principal in the context.
	srv := testservice.Start(testservice.NewService(nil),
		connect.WithInterceptors(authn.NewInterceptor(table, tokens), authz.NewInterceptor(table)))
	defer srv.Close()

	client := srv.Client(connect.ProtocolConnect)
	// UpdateItem needs the role writer or admin, and a scoped credential
	// needs the scopes items:read and items:write.
	for _, token := range []string{"reader-session", "writer-session", "writer-key"} {
		res := testservice.Call(context.Background(), client, testservice.UpdateItem, testservice.Bearer(token), "item-1")
		if res.Err != nil {
			fmt.Printf("%s: %s: %s\n", token, res.Code(), res.Message())
			continue
		}
		fmt.Printf("%s: %s\n", token, res.Code())
	}
	// Output:
	// reader-session: permission_denied: requires one of the roles: writer, admin
	// writer-session: ok
	// writer-key: permission_denied: credential lacks the scopes: items:read, items:write
}
