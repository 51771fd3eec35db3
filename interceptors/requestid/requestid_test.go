package requestid_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/connectguard/guard/interceptors/requestid"
)

// idPattern is 10 random bytes in unpadded base32.
var idPattern = regexp.MustCompile(`^[A-Z2-7]{16}$`)

// echoServer answers each request with requestid.From of its context.
func echoServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(requestid.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, requestid.From(r.Context()))
	})))
	t.Cleanup(srv.Close)
	return srv
}

// get returns the X-Request-Id response header values and the body.
func get(t *testing.T, srv *httptest.Server, clientID string) ([]string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/guard.auth.v1.AuthService/WhoAmI", nil)
	if err != nil {
		t.Fatal(err)
	}
	if clientID != "" {
		req.Header.Set(requestid.Header, clientID)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("request error = %v, want nil", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Values(requestid.Header), string(body)
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		clientID string
	}{
		{"no_client_id", ""},
		{"client_id_ignored", "attacker-chosen-id"},
		{"client_id_shaped_like_ours_ignored", "AAAAAAAAAAAAAAAA"},
		{"client_id_with_log_injection_ignored", "x\" level=ERROR msg=\"forged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := echoServer(t)
			headers, inHandler := get(t, srv, tt.clientID)
			if len(headers) != 1 {
				t.Fatalf("%s response header = %q, want exactly one value", requestid.Header, headers)
			}
			id := headers[0]
			if !idPattern.MatchString(id) {
				t.Errorf("%s = %q, want 16 base32 characters", requestid.Header, id)
			}
			if inHandler != id {
				t.Errorf("From() in handler = %q, want the response header %q", inHandler, id)
			}
			if tt.clientID != "" && (id == tt.clientID || inHandler == tt.clientID) {
				t.Errorf("id = %q, From() = %q; want neither to be the client's %q", id, inHandler, tt.clientID)
			}
		})
	}
}

func TestMiddleware_idsDiffer(t *testing.T) {
	t.Parallel()
	srv := echoServer(t)
	seen := make(map[string]bool)
	for i := range 50 {
		headers, _ := get(t, srv, "")
		if len(headers) != 1 {
			t.Fatalf("request %d: header = %q, want one value", i, headers)
		}
		if seen[headers[0]] {
			t.Fatalf("request %d: id %q was already used", i, headers[0])
		}
		seen[headers[0]] = true
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for range 1000 {
		id := requestid.New()
		if !idPattern.MatchString(id) {
			t.Fatalf("New() = %q, want 16 base32 characters", id)
		}
		if seen[id] {
			t.Fatalf("New() = %q twice", id)
		}
		seen[id] = true
	}
}

func TestFrom_withoutMiddleware(t *testing.T) {
	t.Parallel()
	if got := requestid.From(context.Background()); got != "" {
		t.Errorf("From(background) = %q, want \"\"", got)
	}
}

func TestMiddleware_recorder(t *testing.T) {
	t.Parallel()
	// The id is set before the handler runs, so a handler that fails early
	// still returns it.
	h := requestid.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set(requestid.Header, "client")
	h.ServeHTTP(rec, r)
	if got := rec.Header().Get(requestid.Header); !idPattern.MatchString(got) {
		t.Errorf("%s on an error response = %q, want a generated id", requestid.Header, got)
	}
}
