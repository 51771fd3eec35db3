package ownership_test

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	policyv1 "github.com/connectguard/guard/gen/guard/policy/v1"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/internal/testservice"
	"github.com/connectguard/guard/interceptors/ownership"
)

// owners is a Resolver: each item's id maps to its owner's user id.
type owners map[string]string

func (o owners) Access(_ context.Context, id string, p *authn.Principal) (policyv1.Access, any, error) {
	owner, ok := o[id]
	switch {
	case !ok:
		return 0, nil, fmt.Errorf("item %q: %w", id, ownership.ErrNotFound)
	case owner == p.UserID:
		return policyv1.Access_ACCESS_OWNER, nil, nil
	}
	return policyv1.Access_ACCESS_UNSPECIFIED, nil, nil
}

func ExampleNewInterceptor() {
	table, err := testservice.Table()
	if err != nil {
		panic(err)
	}
	// GetItem's policy: ownership {id_field: "id", resource: "item", access: ACCESS_READ}.
	own, err := ownership.NewInterceptor(table, map[string]ownership.Resolver{"item": owners{"item-1": "alice"}})
	if err != nil {
		panic(err) // a resource kind of the table without a resolver
	}
	tokens := testservice.Tokens{
		"alice": {UserID: "alice", Roles: []string{"reader"}},
		"bob":   {UserID: "bob", Roles: []string{"reader"}},
	}
	srv := testservice.Start(testservice.NewService(nil),
		connect.WithInterceptors(authn.NewInterceptor(table, tokens), own))
	defer srv.Close()

	client := srv.Client(connect.ProtocolConnect)
	for _, call := range []struct{ user, id string }{{"alice", "item-1"}, {"bob", "item-1"}, {"alice", "item-2"}} {
		res := testservice.Call(context.Background(), client, testservice.GetItem, testservice.Bearer(call.user), call.id)
		if res.Err != nil {
			fmt.Printf("%s reads %s: %s: %s\n", call.user, call.id, res.Code(), res.Message())
			continue
		}
		fmt.Printf("%s reads %s: %s\n", call.user, call.id, res.Code())
	}
	// Bob learns no more about item-1, which exists, than about item-2,
	// which does not.

	// Output:
	// alice reads item-1: ok
	// bob reads item-1: not_found: item not found
	// alice reads item-2: not_found: item not found
}
