package clientip_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/connectguard/guard/interceptors/clientip"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestResolver_ClientIP(t *testing.T) {
	t.Parallel()
	proxies := prefixes("10.0.0.0/8", "192.168.1.7/32", "2001:db8:ffff::/48")
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string // one entry per header line
		want    string   // "" for the zero Addr
	}{
		// Spoofing.
		{name: "untrusted_peer_header_ignored", trusted: proxies, remote: "203.0.113.7:5555", xff: []string{"1.2.3.4"}, want: "203.0.113.7"},
		{name: "untrusted_peer_claims_trusted_proxy", trusted: proxies, remote: "203.0.113.7:5555", xff: []string{"1.2.3.4, 10.0.0.2"}, want: "203.0.113.7"},
		{name: "no_trusted_proxies_header_ignored", trusted: nil, remote: "10.0.0.1:443", xff: []string{"1.2.3.4"}, want: "10.0.0.1"},
		{name: "empty_trusted_list_header_ignored", trusted: []netip.Prefix{}, remote: "10.0.0.1:443", xff: []string{"1.2.3.4"}, want: "10.0.0.1"},
		{name: "client_prepends_fake_hop", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"6.6.6.6, 1.2.3.4"}, want: "1.2.3.4"},
		{name: "client_prepends_trusted_looking_hop", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"10.9.9.9, 1.2.3.4"}, want: "1.2.3.4"},

		// Trusted proxies.
		{name: "one_trusted_proxy", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"1.2.3.4"}, want: "1.2.3.4"},
		{name: "trusted_proxy_without_header", trusted: proxies, remote: "10.0.0.1:443", want: "10.0.0.1"},
		{name: "single_host_prefix", trusted: proxies, remote: "192.168.1.7:443", xff: []string{"1.2.3.4"}, want: "1.2.3.4"},
		{name: "neighbour_of_single_host_not_trusted", trusted: proxies, remote: "192.168.1.8:443", xff: []string{"1.2.3.4"}, want: "192.168.1.8"},
		{name: "chain_of_trusted_proxies", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"6.6.6.6, 1.2.3.4, 10.0.0.3, 192.168.1.7"}, want: "1.2.3.4"},
		{name: "every_hop_trusted", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"10.0.0.3, 10.0.0.2"}, want: "10.0.0.3"},
		{name: "whitespace_around_hops", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"  6.6.6.6 ,1.2.3.4\t,  10.0.0.2  "}, want: "1.2.3.4"},
		{name: "ipv6_client", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"2001:db8::1"}, want: "2001:db8::1"},
		{name: "ipv6_proxy", trusted: proxies, remote: "[2001:db8:ffff::1]:443", xff: []string{"1.2.3.4"}, want: "1.2.3.4"},

		// Several header lines are one list, in order.
		{name: "lines_client_in_last", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"6.6.6.6", "1.2.3.4, 10.0.0.2"}, want: "1.2.3.4"},
		{name: "lines_client_in_first", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"6.6.6.6, 1.2.3.4", "10.0.0.2", "10.0.0.3"}, want: "1.2.3.4"},
		{name: "lines_client_alone", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"1.2.3.4", "10.0.0.2"}, want: "1.2.3.4"},

		// Garbage: stop at the last hop that could be trusted.
		{name: "garbage_left_of_client", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"garbage, 1.2.3.4"}, want: "1.2.3.4"},
		{name: "garbage_rightmost", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"1.2.3.4, garbage"}, want: "10.0.0.1"},
		{name: "garbage_after_trusted_hop", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"1.2.3.4, <script>, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "empty_hop", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"1.2.3.4,,10.0.0.2"}, want: "10.0.0.2"},
		{name: "hostname_hop", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"1.2.3.4, proxy.internal"}, want: "10.0.0.1"},
		{name: "empty_header_line", trusted: proxies, remote: "10.0.0.1:443", xff: []string{""}, want: "10.0.0.1"},
		{name: "cidr_hop", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"1.2.3.0/24"}, want: "10.0.0.1"},

		// IPv4-mapped IPv6 is the IPv4 address.
		{name: "mapped_untrusted_peer", trusted: nil, remote: "[::ffff:203.0.113.7]:5555", want: "203.0.113.7"},
		{name: "mapped_trusted_peer", trusted: proxies, remote: "[::ffff:10.0.0.1]:443", xff: []string{"1.2.3.4"}, want: "1.2.3.4"},
		{name: "mapped_client_hop", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"::ffff:1.2.3.4"}, want: "1.2.3.4"},
		{name: "mapped_trusted_hop", trusted: proxies, remote: "10.0.0.1:443", xff: []string{"1.2.3.4, ::ffff:10.0.0.2"}, want: "1.2.3.4"},

		// The peer address itself.
		{name: "peer_without_port", trusted: nil, remote: "203.0.113.7", want: "203.0.113.7"},
		{name: "ipv6_peer", trusted: nil, remote: "[2001:db8::7]:443", want: "2001:db8::7"},
		{name: "unparseable_peer", trusted: proxies, remote: "nonsense", xff: []string{"1.2.3.4"}, want: ""},
		{name: "empty_peer", trusted: proxies, remote: "", xff: []string{"1.2.3.4"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/guard.notes.v1.NoteService/GetNote", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			got := clientip.NewResolver(tt.trusted).ClientIP(r)
			// == also tells 1.2.3.4 from ::ffff:1.2.3.4.
			if got != want {
				t.Errorf("ClientIP() = %v, want %v", got, want)
			}
		})
	}
}

func TestMiddleware_roundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		trusted []netip.Prefix
		xff     string
		want    string
	}{
		// httptest's server sees the client on loopback.
		{name: "spoofed_header_from_untrusted_peer", trusted: prefixes("10.0.0.0/8"), xff: "198.51.100.9", want: "127.0.0.1"},
		{name: "no_trusted_proxies", trusted: nil, xff: "198.51.100.9", want: "127.0.0.1"},
		{name: "trusted_loopback_proxy", trusted: prefixes("127.0.0.0/8"), xff: "6.6.6.6, 198.51.100.9", want: "198.51.100.9"},
		{name: "trusted_loopback_proxy_no_header", trusted: prefixes("127.0.0.0/8"), want: "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(clientip.NewResolver(tt.trusted).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ip, ok := clientip.From(r.Context())
				if !ok {
					http.Error(w, "no client ip", http.StatusInternalServerError)
					return
				}
				_, _ = io.WriteString(w, ip.String())
			})))
			t.Cleanup(srv.Close)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.xff != "" {
				req.Header.Set("X-Forwarded-For", tt.xff)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatalf("GET error = %v, want nil", err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d (%s), want 200", resp.StatusCode, body)
			}
			if got := string(body); got != tt.want {
				t.Errorf("From() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestFrom(t *testing.T) {
	t.Parallel()
	t.Run("without_middleware", func(t *testing.T) {
		t.Parallel()
		if ip, ok := clientip.From(context.Background()); ok || ip.IsValid() {
			t.Errorf("From(background) = %v, %v; want zero, false", ip, ok)
		}
	})
	t.Run("unparseable_peer", func(t *testing.T) {
		t.Parallel()
		var (
			called bool
			gotIP  netip.Addr
			gotOK  bool
		)
		h := clientip.NewResolver(nil).Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			called = true
			gotIP, gotOK = clientip.From(r.Context())
		}))
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "@unix-socket"
		h.ServeHTTP(httptest.NewRecorder(), r)
		if !called {
			t.Fatal("Middleware did not call the next handler")
		}
		if gotOK || gotIP.IsValid() {
			t.Errorf("From() = %v, %v; want zero, false", gotIP, gotOK)
		}
	})
	t.Run("resolved_peer", func(t *testing.T) {
		t.Parallel()
		var gotIP netip.Addr
		var gotOK bool
		h := clientip.NewResolver(prefixes("10.0.0.0/8")).Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			gotIP, gotOK = clientip.From(r.Context())
		}))
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "10.1.2.3:8443"
		r.Header.Set("X-Forwarded-For", "203.0.113.50")
		h.ServeHTTP(httptest.NewRecorder(), r)
		if want := netip.MustParseAddr("203.0.113.50"); !gotOK || gotIP != want {
			t.Errorf("From() = %v, %v; want %v, true", gotIP, gotOK, want)
		}
	})
}

func TestNetwork(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::"},
		{"fe80::1%eth0", "fe80::"},
		{"::1", "::"},
	} {
		if got := clientip.Network(netip.MustParseAddr(tt.in)).String(); got != tt.want {
			t.Errorf("Network(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
