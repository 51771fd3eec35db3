package secureheaders_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/connectguard/guard/interceptors/secureheaders"
)

func TestMiddleware(t *testing.T) {
	t.Parallel()
	// A handler that refuses: the headers must be on errors too.
	refuse := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"code":"unauthenticated"}`, http.StatusUnauthorized)
	})
	// A handler that serves something public and says so.
	public := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
	})
	tests := []struct {
		name      string
		hsts      time.Duration
		tls       bool
		next      http.Handler
		wantCache string
		wantHSTS  string
	}{
		{"cleartext_error", time.Hour, false, refuse, "no-store", ""},
		{"tls_error", time.Hour, true, refuse, "no-store", "max-age=3600"},
		{"tls_without_hsts", 0, true, refuse, "no-store", ""},
		{"handler_overrides_cache", 0, false, public, "public, max-age=60", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/x", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			rec := httptest.NewRecorder()
			secureheaders.Middleware(tt.hsts, tt.next).ServeHTTP(rec, r)
			h := rec.Header()
			if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("got X-Content-Type-Options %q, want nosniff", got)
			}
			if got := h.Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("got Referrer-Policy %q, want no-referrer", got)
			}
			if got := h.Get("Cache-Control"); got != tt.wantCache {
				t.Errorf("got Cache-Control %q, want %q", got, tt.wantCache)
			}
			if got := h.Get("Strict-Transport-Security"); got != tt.wantHSTS {
				t.Errorf("got Strict-Transport-Security %q, want %q", got, tt.wantHSTS)
			}
		})
	}
}
