package ownership_test

import (
	"slices"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/internal/testservice"
	"github.com/connectguard/guard/interceptors/ownership"
)

// denials records what an ownership.Observer is told.
type denials struct {
	mu  sync.Mutex
	got []string
}

func (d *denials) ObserveDenial(procedure, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, procedure+" "+reason)
}

// TestObserver: a resource the caller may not see, or may not change, is
// a denial; one that does not exist, or a resolver's failure, is not.
func TestObserver(t *testing.T) {
	t.Parallel()
	table := testTable(t)
	obs := &denials{}
	own, err := ownership.NewInterceptor(table, map[string]ownership.Resolver{"item": &items{}}, ownership.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	srv := testservice.Start(testservice.NewService(nil), connect.WithInterceptors(authn.NewInterceptor(table, tokens), own))
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		procedure, id, wantCode string
		denied                  bool
	}{
		{testservice.GetItem, "mine", "ok", false},
		{testservice.GetItem, "none", "not_found", true},
		{testservice.GetItem, "missing", "not_found", false},
		{testservice.GetItem, "broken", "internal", false},
		{testservice.UpdateItem, "read", "permission_denied", true},
		{testservice.SyncItems, "none", "not_found", true},
	} {
		obs.mu.Lock()
		obs.got = nil
		obs.mu.Unlock()
		res := testservice.Call(t.Context(), srv.Client(connect.ProtocolConnect), tt.procedure, testservice.Bearer("writer"), tt.id)
		if got := res.Code(); got != tt.wantCode {
			t.Errorf("%s %q: code %s (%v), want %s", tt.procedure, tt.id, got, res.Err, tt.wantCode)
		}
		obs.mu.Lock()
		got := slices.Clone(obs.got)
		obs.mu.Unlock()
		var want []string
		if tt.denied {
			want = []string{tt.procedure + " " + ownership.ReasonOwnership}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s %q: observed %q, want %q", tt.procedure, tt.id, got, want)
		}
	}
}
