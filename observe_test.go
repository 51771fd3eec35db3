package guard_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard"
	"github.com/connectguard/guard/gen/guard/notes/v1/notesv1connect"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// observed records what a guard.Observer is told, one line per event.
type observed struct {
	mu     sync.Mutex
	events []string
}

func (o *observed) add(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, fmt.Sprintf(format, args...))
}

func (o *observed) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	e := o.events
	o.events = nil
	return e
}

func (o *observed) ObserveCall(procedure, protocol string, code connect.Code, _ time.Duration) {
	o.add("call %s %s %d", procedure, protocol, code)
}

func (o *observed) ObserveAuthentication(method guard.Method, result string) {
	o.add("authn %d %s", method, result)
}

func (o *observed) ObserveDenial(procedure, reason string) { o.add("denied %s %s", procedure, reason) }

func (o *observed) ObserveRateLimited(kind string) { o.add("limited %s", kind) }

// TestObserver: through guard.New's chain and HTTP layer, each call is
// reported once with the code its caller got, each credential checked
// with its verdict, and each refusal with its kind.
func TestObserver(t *testing.T) {
	t.Parallel()
	obs := &observed{}
	g, err := guard.New([]protoreflect.ServiceDescriptor{noteService, adminService},
		guard.WithTokens(tokens{}), guard.WithResolver("note", notes{}), guard.WithAuditRecorder(&recorder{}),
		guard.WithIPRateLimit(5, time.Minute), guard.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(notesv1connect.NewNoteServiceHandler(notesv1connect.UnimplementedNoteServiceHandler{}, g.HandlerOptions()...))
	h := g.Handler(mux)
	const create = "/guard.notes.v1.NoteService/CreateNote"
	for _, tt := range []struct {
		name  string
		token string
		want  []string
	}{
		// Unimplemented: the call reached the handler.
		{"member", "good", []string{"authn 1 ok", "call " + create + " connect 12"}},
		{"forged", "bad", []string{"authn 1 invalid", "call " + create + " connect 16"}},
		{"verifier_down", "broken", []string{"authn 1 error", "call " + create + " connect 13"}},
		// Refused in the HTTP layer: no verifier ran.
		{"anonymous", "", []string{"call " + create + " connect 16"}},
		{"ip_budget_spent", "good", []string{"limited ip"}},
	} {
		var read atomic.Int64
		header := http.Header{}
		if tt.token != "" {
			header.Set("Authorization", "Bearer "+tt.token)
		}
		if tt.name == "ip_budget_spent" { // four calls above, two more: the IP's five are spent
			for range 2 {
				h.ServeHTTP(httptest.NewRecorder(), request("application/json", false, []byte(`{"title":"x"}`), header, &read))
			}
		}
		obs.take()
		h.ServeHTTP(httptest.NewRecorder(), request("application/json", false, []byte(`{"title":"x"}`), header, &read))
		if got := obs.take(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: observed %q, want %q", tt.name, got, tt.want)
		}
	}
}
