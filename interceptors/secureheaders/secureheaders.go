// Package secureheaders sets the response headers that keep API responses
// out of caches and away from browser content sniffing, on every response
// of every protocol, refusals included.
//
// Every response gets:
//   - X-Content-Type-Options: nosniff, so a browser never renders a JSON
//     error or a protobuf body as HTML or script;
//   - Cache-Control: no-store, because authenticated responses and the
//     bodies of Login and Refresh carry private data and tokens that no
//     shared or browser cache may keep (a handler that serves something
//     public may set its own Cache-Control);
//   - Referrer-Policy: no-referrer, so links followed from anything the API
//     serves leak no URL.
//
// Responses on TLS connections also get Strict-Transport-Security.
package secureheaders

import (
	"net/http"
	"strconv"
	"time"
)

// Middleware sets the headers on every response of next. hsts is the
// max-age of Strict-Transport-Security, sent on TLS connections only; zero
// or less sends none.
func Middleware(hsts time.Duration, next http.Handler) http.Handler {
	var sts []string
	if hsts > 0 {
		sts = value("max-age=" + strconv.FormatInt(int64(hsts/time.Second), 10))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The keys are canonical and the value slices shared: the headers
		// cost no allocation per response.
		h := w.Header()
		h["X-Content-Type-Options"] = nosniff
		h["Cache-Control"] = noStore
		h["Referrer-Policy"] = noReferrer
		if sts != nil && r.TLS != nil {
			h["Strict-Transport-Security"] = sts
		}
		next.ServeHTTP(w, r)
	})
}

// value returns a header value slice that every response may share: its
// capacity is its length, so Header.Add copies instead of writing into it,
// and Header.Set replaces it.
func value(v string) []string { return []string{v}[:1:1] }

var (
	nosniff    = value("nosniff")
	noStore    = value("no-store")
	noReferrer = value("no-referrer")
)
