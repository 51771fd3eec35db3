package authz_test

import (
	"slices"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/authz"
	"github.com/connectguard/guard/interceptors/internal/testservice"
)

// denials records what an authz.Observer is told.
type denials struct {
	mu  sync.Mutex
	got []string
}

func (d *denials) ObserveDenial(procedure, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, shortName(procedure)+" "+reason)
}

// TestObserver: each denial is reported once with its reason, on unary
// and streaming calls; allowed calls and unauthenticated ones are not
// denials.
func TestObserver(t *testing.T) {
	t.Parallel()
	svc := testservice.NewService(nil)
	table := testTable(t)
	obs := &denials{}
	srv := testservice.Start(svc, connect.WithInterceptors(authn.NewInterceptor(table, principals), authz.NewInterceptor(table, authz.WithObserver(obs))))
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		procedure, token, want string
	}{
		{testservice.GetItem, "reader", ""},
		{testservice.GetItem, "guest", "GetItem role"},
		{testservice.GetItem, "key-write", "GetItem scope"},
		{testservice.ListItems, "guest", "ListItems role"},
		{testservice.SyncItems, "key-none", "SyncItems scope"},
		{testservice.UpdateItem, "reader", "UpdateItem role"},
		{testservice.GetItem, "", ""}, // unauthenticated, refused by authn
	} {
		obs.mu.Lock()
		obs.got = nil
		obs.mu.Unlock()
		var h map[string][]string
		if tt.token != "" {
			h = testservice.Bearer(tt.token)
		}
		testservice.Call(t.Context(), srv.Client(connect.ProtocolConnect), tt.procedure, h, t.Name())
		obs.mu.Lock()
		got := slices.Clone(obs.got)
		obs.mu.Unlock()
		var want []string
		if tt.want != "" {
			want = []string{tt.want}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s as %q: observed %q, want %q", shortName(tt.procedure), tt.token, got, want)
		}
	}
}
