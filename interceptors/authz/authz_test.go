package authz_test

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/authz"
	"github.com/connectguard/guard/interceptors/internal/testservice"
	"github.com/connectguard/guard/interceptors/policy"
)

// principals by token. Keys are scoped; users' own sessions are not.
var principals = testservice.Tokens{
	"reader":    {UserID: "u-reader", Roles: []string{"reader"}},
	"writer":    {UserID: "u-writer", Roles: []string{"writer"}},
	"admin":     {UserID: "u-admin", Roles: []string{"admin"}},
	"guest":     {UserID: "u-guest", Roles: []string{"guest"}},
	"no-roles":  {UserID: "u-none"},
	"key-read":  {UserID: "u-writer", Roles: []string{"writer"}, Scoped: true, Scopes: []string{"items:read"}},
	"key-write": {UserID: "u-writer", Roles: []string{"writer"}, Scoped: true, Scopes: []string{"items:write"}},
	"key-both":  {UserID: "u-writer", Roles: []string{"writer"}, Scoped: true, Scopes: []string{"items:write", "items:read"}},
	"key-none":  {UserID: "u-reader", Roles: []string{"reader"}, Scoped: true},
}

func testTable(t testing.TB) *policy.Table {
	t.Helper()
	table, err := testservice.Table()
	if err != nil {
		t.Fatal(err)
	}
	return table
}

func shortName(procedure string) string {
	return procedure[strings.LastIndex(procedure, "/")+1:]
}

func reachedWith(svc *testservice.Service, id string) int {
	n := 0
	for _, r := range svc.Reached() {
		if r.ID == id {
			n++
		}
	}
	return n
}

// check calls procedure as token over protocol and checks the outcome:
// the code and message, and that the handler was reached exactly when the
// call succeeded.
func check(t *testing.T, srv *testservice.Server, svc *testservice.Service, protocol, procedure, token, wantCode, wantMsg string) {
	t.Helper()
	var h map[string][]string
	if token != "" {
		h = testservice.Bearer(token)
	}
	id := t.Name()
	res := testservice.Call(t.Context(), srv.Client(protocol), procedure, h, id)
	if got := res.Code(); got != wantCode {
		t.Fatalf("code = %s (%v), want %s", got, res.Err, wantCode)
	}
	if got := res.Message(); got != wantMsg {
		t.Errorf("message = %q, want %q", got, wantMsg)
	}
	wantReached := 0
	if wantCode == "ok" {
		wantReached = 1
	}
	if got := reachedWith(svc, id); got != wantReached {
		t.Errorf("handler reached %d times, want %d", got, wantReached)
	}
}

// TestRolesAndScopes: roles are any-of, scopes all-of and only for scoped
// credentials, on unary, server-streaming and bidi calls.
func TestRolesAndScopes(t *testing.T) {
	t.Parallel()
	svc := testservice.NewService(nil)
	table := testTable(t)
	srv := testservice.Start(svc, connect.WithInterceptors(authn.NewInterceptor(table, principals), authz.NewInterceptor(table)))
	t.Cleanup(srv.Close)

	const (
		readRoles   = "requires one of the roles: reader, writer"
		writeRoles  = "requires one of the roles: writer, admin"
		readScopes  = "credential lacks the scopes: items:read"
		writeScopes = "credential lacks the scopes: items:read, items:write"
	)
	type want struct{ code, msg string }
	ok := want{"ok", ""}
	denied := func(msg string) want { return want{"permission_denied", msg} }
	// GetItem, ListItems and SyncItems share one policy: roles reader or
	// writer, scope items:read.
	readTests := []struct {
		name  string
		token string
		want  want
	}{
		{"reader", "reader", ok},
		{"writer_any_of", "writer", ok},
		{"admin_not_listed", "admin", denied(readRoles)},
		{"unknown_role", "guest", denied(readRoles)},
		{"no_roles", "no-roles", denied(readRoles)},
		{"key_with_scope", "key-read", ok},
		{"key_with_other_scope", "key-write", denied(readScopes)},
		{"key_without_scopes", "key-none", denied(readScopes)},
	}
	for _, tt := range readTests {
		for _, procedure := range []string{testservice.GetItem, testservice.ListItems, testservice.SyncItems} {
			for _, protocol := range testservice.Protocols() {
				t.Run(tt.name+"/"+shortName(procedure)+"/"+protocol, func(t *testing.T) {
					t.Parallel()
					check(t, srv, svc, protocol, procedure, tt.token, tt.want.code, tt.want.msg)
				})
			}
		}
	}
	// UpdateItem: roles writer or admin, scopes items:read and items:write.
	updateTests := []struct {
		name  string
		token string
		want  want
	}{
		{"writer_unscoped_ignores_scopes", "writer", ok},
		{"admin", "admin", ok},
		{"reader_cannot_update", "reader", denied(writeRoles)},
		{"key_with_all_scopes", "key-both", ok},
		{"key_with_read_scope_only", "key-read", denied(writeScopes)},
		{"key_with_write_scope_only", "key-write", denied(writeScopes)},
		{"key_without_the_role", "key-none", denied(writeRoles)},
	}
	for _, tt := range updateTests {
		for _, protocol := range testservice.Protocols() {
			t.Run(tt.name+"/UpdateItem/"+protocol, func(t *testing.T) {
				t.Parallel()
				check(t, srv, svc, protocol, testservice.UpdateItem, tt.token, tt.want.code, tt.want.msg)
			})
		}
	}
}

// TestNoPrincipal: wired without authn before it, authz refuses every
// non-public call as unauthenticated (fails closed) and lets public ones
// through.
func TestNoPrincipal(t *testing.T) {
	t.Parallel()
	svc := testservice.NewService(nil)
	srv := testservice.Start(svc, connect.WithInterceptors(authz.NewInterceptor(testTable(t))))
	t.Cleanup(srv.Close)
	for _, procedure := range []string{testservice.GetItem, testservice.UpdateItem, testservice.ListItems, testservice.SyncItems, testservice.Ping} {
		for _, protocol := range []string{connect.ProtocolConnect, connect.ProtocolGRPC} {
			t.Run(shortName(procedure)+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				if procedure == testservice.Ping {
					check(t, srv, svc, protocol, procedure, "reader", "ok", "")
					return
				}
				// The credential is not read: only authn makes principals.
				check(t, srv, svc, protocol, procedure, "reader", "unauthenticated", "authentication required")
			})
		}
	}
}

// TestNoPolicy: a procedure missing from the table is denied, even for a
// caller with every role.
func TestNoPolicy(t *testing.T) {
	t.Parallel()
	empty, err := policy.NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	all := as{&authn.Principal{UserID: "u-all", Roles: []string{"reader", "writer", "admin"}}}
	svc := testservice.NewService(nil)
	srv := testservice.Start(svc, connect.WithInterceptors(all, authz.NewInterceptor(empty)))
	t.Cleanup(srv.Close)
	for _, procedure := range []string{testservice.Ping, testservice.GetItem, testservice.ListItems, testservice.SyncItems} {
		for _, protocol := range []string{connect.ProtocolConnect, connect.ProtocolGRPC} {
			t.Run(shortName(procedure)+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				check(t, srv, svc, protocol, procedure, "", "permission_denied", "no access policy for this procedure")
			})
		}
	}
}

// as puts p in the context of handler calls, as authn would.
type as struct{ p *authn.Principal }

func (a as) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		return next(authn.NewContext(ctx, a.p), req)
	}
}

func (a as) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a as) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(authn.NewContext(ctx, a.p), conn)
	}
}

// TestCheck: Check applies a rule to the principal in a context.
func TestCheck(t *testing.T) {
	t.Parallel()
	table := testTable(t)
	get, _ := table.Lookup(testservice.GetItem)
	ping, _ := table.Lookup(testservice.Ping)
	tests := []struct {
		name string
		ctx  context.Context
		rule *policy.Rule
		want connect.Code
	}{
		{"public_without_principal", context.Background(), ping, 0},
		{"reader", authn.NewContext(context.Background(), principals["reader"]), get, 0},
		{"no_principal", context.Background(), get, connect.CodeUnauthenticated},
		{"admin", authn.NewContext(context.Background(), principals["admin"]), get, connect.CodePermissionDenied},
		{"key_without_scope", authn.NewContext(context.Background(), principals["key-none"]), get, connect.CodePermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := authz.Check(tt.ctx, tt.rule)
			var got connect.Code
			if err != nil {
				got = connect.CodeOf(err)
			}
			if got != tt.want {
				t.Errorf("Check() = %v, want code %v", err, tt.want)
			}
		})
	}
}
