package requestid_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/connectguard/guard/interceptors/requestid"
)

func ExampleMiddleware() {
	var inHandler string
	h := requestid.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		inHandler = requestid.From(r.Context())
	}))

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set(requestid.Header, "chosen-by-client")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)

	id := rec.Header().Get(requestid.Header)
	fmt.Println(len(id), id == inHandler, id == "chosen-by-client")
	// Output: 16 true false
}
