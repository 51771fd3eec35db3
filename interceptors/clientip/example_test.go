package clientip_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/connectguard/guard/interceptors/clientip"
)

func ExampleResolver_ClientIP() {
	res := clientip.NewResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})

	// Through our proxy: the rightmost hop the proxy did not add is the client.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.1:443"
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.7")
	fmt.Println(res.ClientIP(r))

	// Straight from the internet: the header is the client's own claim.
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "198.51.100.2:5555"
	r.Header.Set("X-Forwarded-For", "1.2.3.4")
	fmt.Println(res.ClientIP(r))
	// Output:
	// 203.0.113.7
	// 198.51.100.2
}
