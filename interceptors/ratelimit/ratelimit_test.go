package ratelimit_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/interceptors/ratelimit"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

func TestError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		d         ratelimit.Decision
		wantRetry string
		wantLimit string
	}{
		{"one_second", ratelimit.Decision{Limit: 20, RetryAfter: time.Second}, "1", "20"},
		{"minutes", ratelimit.Decision{Limit: 5, RetryAfter: 95 * time.Second}, "95", "5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ratelimit.Error(tt.d)
			if got, want := err.Code(), connect.CodeResourceExhausted; got != want {
				t.Errorf("Code() = %v, want %v", got, want)
			}
			if got, want := connect.CodeOf(err), connect.CodeResourceExhausted; got != want {
				t.Errorf("CodeOf() = %v, want %v", got, want)
			}
			if msg := err.Message(); !strings.Contains(msg, "rate limit") || !strings.Contains(msg, tt.wantRetry) {
				t.Errorf("Message() = %q, want it to say rate limit and %s", msg, tt.wantRetry)
			}
			for header, want := range map[string]string{
				"Retry-After":         tt.wantRetry,
				"RateLimit-Limit":     tt.wantLimit,
				"RateLimit-Remaining": "0",
				"RateLimit-Reset":     tt.wantRetry,
			} {
				if got := err.Meta().Get(header); got != want {
					t.Errorf("Meta().Get(%q) = %q, want %q", header, got, want)
				}
			}
			var retry *errdetails.RetryInfo
			for _, d := range err.Details() {
				v, verr := d.Value()
				if verr != nil {
					t.Fatalf("detail %s: Value() error = %v", d.Type(), verr)
				}
				if ri, ok := v.(*errdetails.RetryInfo); ok {
					retry = ri
				}
			}
			if retry == nil {
				t.Fatalf("Details() has no google.rpc.RetryInfo, want one")
			}
			if got := retry.GetRetryDelay().AsDuration(); got != tt.d.RetryAfter {
				t.Errorf("RetryInfo.RetryDelay = %v, want %v", got, tt.d.RetryAfter)
			}
		})
	}
}

// TestError_fromLimiter checks the error of a real refusal end to end.
func TestError_fromLimiter(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0)
	l := newLimiter(clock)
	l.Allow("k", 1, time.Minute)
	d := l.Allow("k", 1, time.Minute)
	if d.Allowed {
		t.Fatal("second call allowed, want refused")
	}
	err := ratelimit.Error(d)
	secs, perr := strconv.Atoi(err.Meta().Get("Retry-After"))
	if perr != nil {
		t.Fatalf("Retry-After = %q, want an integer: %v", err.Meta().Get("Retry-After"), perr)
	}
	if got, want := time.Duration(secs)*time.Second, d.RetryAfter; got != want {
		t.Errorf("Retry-After = %v, want %v", got, want)
	}
	clock.Advance(time.Duration(secs) * time.Second)
	if d := l.Allow("k", 1, time.Minute); !d.Allowed {
		t.Errorf("after Retry-After: refused, want allowed")
	}
}

// wireError is the JSON body of a Connect unary error.
type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type string `json:"type"`
	} `json:"details"`
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	const limit = 3
	clock := newFakeClock(t0)
	l := newLimiter(clock)
	var served int
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served++
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	})
	h := clientip.NewResolver(nil).Middleware(ratelimit.Middleware(l, limit, time.Minute, nil, next))

	call := func(remote, contentType string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "/guard.notes.v1.NoteService/ListNotes", strings.NewReader("{}"))
		r.RemoteAddr = remote
		r.Header.Set("Content-Type", contentType)
		// Spoofing the header must not buy a fresh budget: no proxy is trusted.
		r.Header.Set("X-Forwarded-For", "192.0.2."+strconv.Itoa(served+1))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}

	for i := range limit {
		if rec := call("203.0.113.7:40000", "application/json"); rec.Code != http.StatusOK {
			t.Fatalf("request %d: status = %d, want 200", i+1, rec.Code)
		}
	}
	// Another port of the same address spends the same budget.
	rec := call("203.0.113.7:40001", "application/json")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("request %d: status = %d, want 429", limit+1, rec.Code)
	}
	if served != limit {
		t.Errorf("next handler served %d requests, want %d: a refused request reached it", served, limit)
	}
	retryAfter := rec.Header().Get("Retry-After")
	secs, err := strconv.Atoi(retryAfter)
	if err != nil || secs < 1 || secs > 120 {
		t.Errorf("Retry-After = %q, want whole seconds in 1..120", retryAfter)
	}
	if got, want := rec.Header().Get("RateLimit-Limit"), strconv.Itoa(limit); got != want {
		t.Errorf("RateLimit-Limit = %q, want %q", got, want)
	}
	if got, want := rec.Header().Get("Content-Type"), "application/json"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	var body wireError
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not a Connect error: %v", rec.Body, err)
	}
	if got, want := body.Code, "resource_exhausted"; got != want {
		t.Errorf("body code = %q, want %q", got, want)
	}
	if len(body.Details) != 1 || body.Details[0].Type != "google.rpc.RetryInfo" {
		t.Errorf("body details = %+v, want one google.rpc.RetryInfo", body.Details)
	}

	t.Run("grpc_caller_gets_grpc_status", func(t *testing.T) {
		rec := call("203.0.113.7:40002", "application/grpc")
		if rec.Code != http.StatusOK {
			t.Errorf("status = %d, want 200 (gRPC carries the error in its status)", rec.Code)
		}
		if got, want := rec.Header().Get("Grpc-Status"), strconv.Itoa(int(connect.CodeResourceExhausted)); got != want {
			t.Errorf("Grpc-Status = %q, want %q", got, want)
		}
	})
	t.Run("other_client_has_own_budget", func(t *testing.T) {
		if rec := call("198.51.100.20:5000", "application/json"); rec.Code != http.StatusOK {
			t.Errorf("status = %d, want 200", rec.Code)
		}
	})
	t.Run("allowed_after_retry_after", func(t *testing.T) {
		clock.Advance(time.Duration(secs) * time.Second)
		if rec := call("203.0.113.7:40003", "application/json"); rec.Code != http.StatusOK {
			t.Errorf("status after waiting Retry-After = %d, want 200", rec.Code)
		}
	})
	if served != limit+2 {
		t.Errorf("next handler served %d requests, want %d", served, limit+2)
	}
}

// TestMiddleware_realServer runs the middleware behind a real HTTP server.
func TestMiddleware_realServer(t *testing.T) {
	t.Parallel()
	l := newLimiter(newFakeClock(t0))
	srv := httptest.NewServer(clientip.NewResolver(nil).Middleware(
		ratelimit.Middleware(l, 2, time.Minute, nil, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}))))
	t.Cleanup(srv.Close)
	var codes []int
	for range 3 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/guard.auth.v1.AuthService/WhoAmI", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("POST error = %v", err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	want := []int{http.StatusNoContent, http.StatusNoContent, http.StatusTooManyRequests}
	for i := range want {
		if codes[i] != want[i] {
			t.Errorf("status codes = %v, want %v", codes, want)
			break
		}
	}
}

func TestError_isConnectError(t *testing.T) {
	t.Parallel()
	var err error = ratelimit.Error(ratelimit.Decision{Limit: 1, RetryAfter: 3 * time.Second})
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("Error() = %T, want *connect.Error", err)
	}
	if strings.Contains(ce.Message(), "\n") {
		t.Errorf("Message() = %q, want one line", ce.Message())
	}
}
