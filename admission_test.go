package guard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"github.com/connectguard/guard"
	"github.com/connectguard/guard/gen/guard/notes/v1/notesv1connect"
	"github.com/connectguard/guard/interceptors/clientip"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// deny refuses user u1, and counts what it was asked.
type deny struct{ asked atomic.Int64 }

func (d *deny) Admit(_ context.Context, p *guard.Principal) *connect.Error {
	d.asked.Add(1)
	if p != nil && p.UserID == "u1" {
		return connect.NewError(connect.CodeResourceExhausted, nil)
	}
	return nil
}

// sources is an Observer that is also a guard.SourceObserver.
type sources struct {
	observed
	invalid atomic.Int64
	withIP  atomic.Int64
}

func (s *sources) ObserveInvalidCredential(ctx context.Context, _ guard.Method) {
	s.invalid.Add(1)
	if _, ok := clientip.From(ctx); ok {
		s.withIP.Add(1)
	}
}

// TestAdmission: a refused caller gets the Admission's answer right after
// authn; a credential that fails verification reaches a SourceObserver
// with the client IP, and nothing else does.
func TestAdmission(t *testing.T) {
	t.Parallel()
	adm, obs := &deny{}, &sources{}
	g, err := guard.New([]protoreflect.ServiceDescriptor{noteService, adminService},
		guard.WithTokens(tokens{}), guard.WithResolver("note", notes{}), guard.WithAuditRecorder(&recorder{}),
		guard.WithAdmission(adm), guard.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(notesv1connect.NewNoteServiceHandler(notesv1connect.UnimplementedNoteServiceHandler{}, g.HandlerOptions()...))
	h := g.Handler(mux)
	for _, tt := range []struct {
		token, want string
		asked       int64
	}{
		{"good", `"code":"resource_exhausted"`, 1}, // u1 is refused
		{"bad", `"code":"unauthenticated"`, 0},     // authn refuses first
		{"broken", `"code":"internal"`, 0},
	} {
		before := adm.asked.Load()
		rec := httptest.NewRecorder()
		var read atomic.Int64
		h.ServeHTTP(rec, request("application/json", false, []byte(`{"title":"x"}`), http.Header{"Authorization": {"Bearer " + tt.token}}, &read))
		if !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("token %q: got %s, want %s", tt.token, rec.Body, tt.want)
		}
		if got := adm.asked.Load() - before; got != tt.asked {
			t.Errorf("token %q: Admit asked %d times, want %d", tt.token, got, tt.asked)
		}
	}
	if got, ip := obs.invalid.Load(), obs.withIP.Load(); got != 1 || ip != 1 {
		t.Errorf("ObserveInvalidCredential: %d calls, %d with a client IP; want 1, 1", got, ip)
	}
}
