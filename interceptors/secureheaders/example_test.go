package secureheaders_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/connectguard/guard/interceptors/secureheaders"
)

func ExampleMiddleware() {
	h := secureheaders.Middleware(365*24*time.Hour, http.NotFoundHandler())

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/guard.auth.v1.AuthService/Login", nil))
	fmt.Println(rec.Header().Get("X-Content-Type-Options"), rec.Header().Get("Cache-Control"), rec.Header().Get("Referrer-Policy"))
	fmt.Printf("HSTS on cleartext: %q\n", rec.Header().Get("Strict-Transport-Security"))
	// Output:
	// nosniff no-store no-referrer
	// HSTS on cleartext: ""
}
