package ownership_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	policyv1 "github.com/connectguard/guard/gen/guard/policy/v1"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/internal/testservice"
	"github.com/connectguard/guard/interceptors/ownership"
	"github.com/connectguard/guard/interceptors/policy"
)

// item is what the resolver loads.
type item struct{ id string }

// items resolves items by id, whoever asks, going by the part of the id
// before any "#" (tests sharing a server tell their calls apart by the
// rest): "mine" is owned, "read" and "write" are shared at that level,
// "none" exists but is not shared, "archived" answers a Connect error of
// its own, "broken" fails, and any other item does not exist. It records
// the ids it was asked about, and loads items named by their kind.
type items struct {
	mu    sync.Mutex
	asked []string
}

func (r *items) Access(_ context.Context, id string, _ *authn.Principal) (policyv1.Access, any, error) {
	r.mu.Lock()
	r.asked = append(r.asked, id)
	r.mu.Unlock()
	kind, _, _ := strings.Cut(id, "#")
	switch kind {
	case "mine":
		return policyv1.Access_ACCESS_OWNER, &item{id: kind}, nil
	case "read":
		return policyv1.Access_ACCESS_READ, &item{id: kind}, nil
	case "write":
		return policyv1.Access_ACCESS_WRITE, nil, nil
	case "none":
		return policyv1.Access_ACCESS_UNSPECIFIED, &item{id: kind}, nil
	case "archived":
		return 0, nil, fmt.Errorf("load item: %w", connect.NewError(connect.CodeFailedPrecondition, errors.New("item is archived")))
	case "broken":
		return 0, nil, errors.New("database is down: SELECT * FROM items")
	}
	return 0, nil, fmt.Errorf("load item %q: %w", id, ownership.ErrNotFound)
}

func (r *items) wasAsked(id string) bool {
	return slices.Contains(r.askedIDs(), id)
}

func (r *items) askedIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.asked)
}

var tokens = testservice.Tokens{
	"reader": {UserID: "u-reader", Roles: []string{"reader"}},
	"writer": {UserID: "u-writer", Roles: []string{"writer"}},
	"admin":  {UserID: "u-admin", Roles: []string{"admin"}},
}

func testTable(t testing.TB) *policy.Table {
	t.Helper()
	table, err := testservice.Table()
	if err != nil {
		t.Fatal(err)
	}
	return table
}

type fixture struct {
	srv      *testservice.Server
	svc      *testservice.Service
	resolver *items
	log      *testservice.Log
}

// start serves the test service behind authn and ownership. The handler
// answers already_exists naming the resource Resource gave it, if any.
func start(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{resolver: &items{}, log: testservice.NewLog()}
	table := testTable(t)
	own, err := ownership.NewInterceptor(table, map[string]ownership.Resolver{"item": f.resolver}, ownership.WithLogger(f.log.Logger))
	if err != nil {
		t.Fatal(err)
	}
	f.svc = testservice.NewService(func(ctx context.Context, _, _ string) error {
		if it, ok := ownership.Resource[*item](ctx); ok {
			return connect.NewError(connect.CodeAlreadyExists, errors.New("loaded "+it.id))
		}
		return nil
	})
	f.srv = testservice.Start(f.svc, connect.WithInterceptors(authn.NewInterceptor(table, tokens), own))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) reached(procedure, id string) bool {
	return slices.Contains(f.svc.Reached(), testservice.Reached{Procedure: procedure, ID: id})
}

func shortName(procedure string) string {
	return procedure[strings.LastIndex(procedure, "/")+1:]
}

// TestUnary: GetItem needs read access to the item named by id, UpdateItem
// write access to the one named by item.id, which admin bypasses.
func TestUnary(t *testing.T) {
	t.Parallel()
	f := start(t)
	tests := []struct {
		name      string
		procedure string
		token     string
		ids       []string // nil: no id field at all (UpdateItem's item unset)
		code      string
		msg       string
		// asked: whether the resolver must be consulted.
		asked bool
	}{
		{"owner_reads_with_loaded_resource", testservice.GetItem, "reader", []string{"mine"}, "already_exists", "loaded mine", true},
		{"shared_reader_reads", testservice.GetItem, "reader", []string{"read"}, "already_exists", "loaded read", true},
		{"no_resource_loaded", testservice.GetItem, "reader", []string{"write"}, "ok", "", true},
		{"no_access_is_not_found", testservice.GetItem, "reader", []string{"none"}, "not_found", "item not found", true},
		{"absent_is_not_found", testservice.GetItem, "reader", []string{"missing"}, "not_found", "item not found", true},
		{"empty_id_is_not_found", testservice.GetItem, "reader", []string{""}, "not_found", "item not found", false},
		{"resolver_connect_error_passed_through", testservice.GetItem, "reader", []string{"archived"}, "failed_precondition", "item is archived", true},
		{"reader_cannot_write", testservice.UpdateItem, "writer", []string{"read"}, "permission_denied", "write access to this item is required", true},
		{"writer_writes", testservice.UpdateItem, "writer", []string{"write"}, "ok", "", true},
		{"owner_writes", testservice.UpdateItem, "writer", []string{"mine"}, "already_exists", "loaded mine", true},
		{"no_access_to_write_is_not_found", testservice.UpdateItem, "writer", []string{"none"}, "not_found", "item not found", true},
		{"unset_parent_message_is_not_found", testservice.UpdateItem, "writer", nil, "not_found", "item not found", false},
		{"admin_bypasses", testservice.UpdateItem, "admin", []string{"none"}, "ok", "", false},
		{"admin_bypasses_absent", testservice.UpdateItem, "admin", []string{"missing"}, "ok", "", false},
	}
	for _, tt := range tests {
		for _, protocol := range testservice.Protocols() {
			t.Run(tt.name+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				var ids []string
				id := ""
				if len(tt.ids) > 0 {
					id = tt.ids[0]
					if id != "" {
						id += "#" + t.Name()
					}
					ids = []string{id}
				}
				res := testservice.Call(t.Context(), f.srv.Client(protocol), tt.procedure, testservice.Bearer(tt.token), ids...)
				if got := res.Code(); got != tt.code {
					t.Fatalf("code = %s (%v), want %s", got, res.Err, tt.code)
				}
				if got := res.Message(); got != tt.msg {
					t.Errorf("message = %q, want %q", got, tt.msg)
				}
				handled := tt.code == "ok" || tt.code == "already_exists"
				if got := f.reached(tt.procedure, id); got != handled {
					t.Errorf("handler reached = %v, want %v", got, handled)
				}
				if got := f.resolver.wasAsked(id); tt.asked && !got {
					t.Errorf("resolver not asked about %q, want it asked", id)
				}
			})
		}
	}
}

// TestResolverNotAsked: an empty id and the bypass roles never reach the
// resolver. (TestUnary shares one resolver between subtests; this one
// has its own.)
func TestResolverNotAsked(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		procedure string
		token     string
		ids       []string
	}{
		{"empty_id", testservice.GetItem, "reader", []string{""}},
		{"unset_parent_message", testservice.UpdateItem, "writer", nil},
		{"bypass_role", testservice.UpdateItem, "admin", []string{"none"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := start(t)
			testservice.Call(t.Context(), f.srv.Client(connect.ProtocolGRPC), tt.procedure, testservice.Bearer(tt.token), tt.ids...)
			if asked := f.resolver.askedIDs(); asked != nil {
				t.Errorf("resolver asked about %q, want not asked", asked)
			}
		})
	}
}

// TestResolverFailure: a resolver's own failure is internal, naming the
// request id and nothing else; the detail is logged under that id.
func TestResolverFailure(t *testing.T) {
	t.Parallel()
	f := start(t)
	for _, procedure := range []string{testservice.GetItem, testservice.ListItems, testservice.SyncItems} {
		for _, protocol := range testservice.Protocols() {
			t.Run(shortName(procedure)+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				id := "broken#" + t.Name()
				res := testservice.Call(t.Context(), f.srv.Client(protocol), procedure, testservice.Bearer("reader"), id)
				if got, want := res.Code(), "internal"; got != want {
					t.Fatalf("code = %s (%v), want %s", got, res.Err, want)
				}
				requestID := res.Meta.Get("X-Request-Id")
				if got, want := res.Message(), "internal error (request id "+requestID+")"; requestID == "" || got != want {
					t.Errorf("message = %q, want %q", got, want)
				}
				if f.reached(procedure, id) {
					t.Errorf("handler reached, want not")
				}
				lines := f.log.Lines(map[string]string{"request_id": requestID})
				if len(lines) != 1 {
					t.Fatalf("got %d log lines for request id %s, want 1; log:\n%s", len(lines), requestID, f.log)
				}
				for k, want := range map[string]string{"level": "ERROR", "msg": "ownership check failed", "procedure": procedure, "resource": "item"} {
					if got, _ := lines[0][k].(string); got != want {
						t.Errorf("log %s = %q, want %q", k, got, want)
					}
				}
				if got, _ := lines[0]["error"].(string); !strings.Contains(got, "database is down") {
					t.Errorf("log error = %q, want the resolver's error", got)
				}
			})
		}
	}
}

// TestServerStream: ListItems checks its one request like a unary call,
// but hands the handler no resource.
func TestServerStream(t *testing.T) {
	t.Parallel()
	f := start(t)
	tests := []struct {
		id, code, msg string
	}{
		{"mine", "ok", ""}, // ok, not already_exists: Resource gives streams nothing
		{"read", "ok", ""},
		{"none", "not_found", "item not found"},
		{"missing", "not_found", "item not found"},
		{"", "not_found", "item not found"},
		{"archived", "failed_precondition", "item is archived"},
	}
	for _, tt := range tests {
		for _, protocol := range testservice.Protocols() {
			t.Run("id_"+tt.id+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				id := tt.id
				if id != "" {
					id += "#" + t.Name()
				}
				res := testservice.Call(t.Context(), f.srv.Client(protocol), testservice.ListItems, testservice.Bearer("reader"), id)
				if got := res.Code(); got != tt.code {
					t.Fatalf("code = %s (%v), want %s", got, res.Err, tt.code)
				}
				if got := res.Message(); got != tt.msg {
					t.Errorf("message = %q, want %q", got, tt.msg)
				}
				wantIDs := []string(nil)
				if tt.code == "ok" {
					wantIDs = slices.Repeat([]string{id}, testservice.ListItemsCount)
				}
				if !slices.Equal(res.IDs, wantIDs) {
					t.Errorf("responses = %q, want %q", res.IDs, wantIDs)
				}
				if got := f.reached(testservice.ListItems, id); got != (tt.code == "ok") {
					t.Errorf("handler reached = %v, want %v", got, tt.code == "ok")
				}
			})
		}
	}
}

// TestBidiStream: every message of SyncItems is checked; the first that
// names an item the caller may not read ends the stream, and the handler
// never sees it (nor anything after it).
func TestBidiStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ids     []string
		code    string
		msg     string
		handled []string
	}{
		{"all_readable", []string{"mine", "read", "write"}, "ok", "", []string{"mine", "read", "write"}},
		{"later_message_hidden", []string{"mine", "read", "none", "mine"}, "not_found", "item not found", []string{"mine", "read"}},
		{"later_message_absent", []string{"read", "missing"}, "not_found", "item not found", []string{"read"}},
		{"later_message_empty_id", []string{"read", ""}, "not_found", "item not found", []string{"read"}},
		{"first_message_hidden", []string{"none", "mine"}, "not_found", "item not found", nil},
		{"resolver_connect_error", []string{"mine", "archived"}, "failed_precondition", "item is archived", []string{"mine"}},
	}
	for _, tt := range tests {
		for _, protocol := range testservice.Protocols() {
			t.Run(tt.name+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				f := start(t)
				res := testservice.Call(t.Context(), f.srv.Client(protocol), testservice.SyncItems, testservice.Bearer("reader"), tt.ids...)
				if got := res.Code(); got != tt.code {
					t.Fatalf("code = %s (%v), want %s", got, res.Err, tt.code)
				}
				if got := res.Message(); got != tt.msg {
					t.Errorf("message = %q, want %q", got, tt.msg)
				}
				var handled []string
				for _, r := range f.svc.Reached() {
					handled = append(handled, r.ID)
				}
				if !slices.Equal(handled, tt.handled) {
					t.Errorf("handler saw %q, want %q", handled, tt.handled)
				}
				if !slices.Equal(res.IDs, tt.handled) {
					t.Errorf("client received %q, want %q", res.IDs, tt.handled)
				}
			})
		}
	}
}

// TestNoPrincipal: wired without authn, ownership refuses every checked
// call as unauthenticated before asking the resolver.
func TestNoPrincipal(t *testing.T) {
	t.Parallel()
	resolver := &items{}
	own, err := ownership.NewInterceptor(testTable(t), map[string]ownership.Resolver{"item": resolver})
	if err != nil {
		t.Fatal(err)
	}
	svc := testservice.NewService(nil)
	srv := testservice.Start(svc, connect.WithInterceptors(own))
	t.Cleanup(srv.Close)
	for _, procedure := range []string{testservice.GetItem, testservice.ListItems, testservice.SyncItems} {
		for _, protocol := range []string{connect.ProtocolConnect, connect.ProtocolGRPC} {
			t.Run(shortName(procedure)+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				res := testservice.Call(t.Context(), srv.Client(protocol), procedure, nil, "mine")
				if got, want := res.Code(), "unauthenticated"; got != want {
					t.Fatalf("code = %s (%v), want %s", got, res.Err, want)
				}
			})
		}
	}
	if got := svc.Reached(); len(got) > 0 {
		t.Errorf("handler reached by %v, want nothing", got)
	}
	if asked := resolver.askedIDs(); asked != nil {
		t.Errorf("resolver asked about %q, want nothing", asked)
	}
}

// TestNoOwnershipRule: methods without an ownership rule pass unchecked.
func TestNoOwnershipRule(t *testing.T) {
	t.Parallel()
	f := start(t)
	for _, procedure := range []string{testservice.Ping, testservice.LimitedPerUser} {
		res := testservice.Call(t.Context(), f.srv.Client(connect.ProtocolConnect), procedure, testservice.Bearer("reader"), "none")
		if res.Err != nil {
			t.Errorf("%s: error = %v, want none", shortName(procedure), res.Err)
		}
	}
	if asked := f.resolver.askedIDs(); asked != nil {
		t.Errorf("resolver asked about %q, want nothing", asked)
	}
}

// TestNoPolicy: a procedure missing from the table is denied.
func TestNoPolicy(t *testing.T) {
	t.Parallel()
	empty, err := policy.NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	own, err := ownership.NewInterceptor(empty, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := testservice.NewService(nil)
	srv := testservice.Start(svc, connect.WithInterceptors(own))
	t.Cleanup(srv.Close)
	for _, procedure := range []string{testservice.Ping, testservice.GetItem, testservice.ListItems, testservice.SyncItems} {
		for _, protocol := range []string{connect.ProtocolConnect, connect.ProtocolGRPC} {
			t.Run(shortName(procedure)+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				res := testservice.Call(t.Context(), srv.Client(protocol), procedure, nil, "mine")
				if got, want := res.Code(), "permission_denied"; got != want {
					t.Fatalf("code = %s (%v), want %s", got, res.Err, want)
				}
				if got, want := res.Message(), "no access policy for this procedure"; got != want {
					t.Errorf("message = %q, want %q", got, want)
				}
			})
		}
	}
	if got := svc.Reached(); len(got) > 0 {
		t.Errorf("handler reached by %v, want nothing", got)
	}
}

func TestNewInterceptorNeedsResolvers(t *testing.T) {
	t.Parallel()
	table := testTable(t)
	for name, resolvers := range map[string]map[string]ownership.Resolver{
		"none":       nil,
		"other_kind": {"note": &items{}},
		"nil":        {"item": nil},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			i, err := ownership.NewInterceptor(table, resolvers)
			if want := `ownership: no resolver for resource kind "item"`; err == nil || err.Error() != want {
				t.Errorf("NewInterceptor() = %v, %v; want error %q", i, err, want)
			}
		})
	}
}

// TestClientCalls: on a client, nothing is checked.
func TestClientCalls(t *testing.T) {
	t.Parallel()
	resolver := &items{}
	own, err := ownership.NewInterceptor(testTable(t), map[string]ownership.Resolver{"item": resolver})
	if err != nil {
		t.Fatal(err)
	}
	srv := testservice.Start(testservice.NewService(nil))
	t.Cleanup(srv.Close)
	client := srv.Client(connect.ProtocolConnect, connect.WithInterceptors(own))
	for _, procedure := range []string{testservice.GetItem, testservice.ListItems, testservice.SyncItems} {
		if res := testservice.Call(t.Context(), client, procedure, nil, "none"); res.Err != nil {
			t.Errorf("%s: error = %v, want none", shortName(procedure), res.Err)
		}
	}
	if asked := resolver.askedIDs(); asked != nil {
		t.Errorf("resolver asked about %q on a client, want nothing", asked)
	}
}
