// Package clientip finds the address of the client behind a request.
//
// X-Forwarded-For is believed only when the direct peer is a configured
// trusted proxy, and then only up to the first hop that is not one: a
// client cannot choose its own address by sending the header.
package clientip

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver reads client addresses.
type Resolver struct {
	trusted []netip.Prefix
}

// NewResolver returns a Resolver trusting X-Forwarded-For from peers in
// trusted. With none, the header is ignored.
func NewResolver(trusted []netip.Prefix) *Resolver {
	return &Resolver{trusted: trusted}
}

// ClientIP returns the client address of r, or the zero Addr when even the
// peer address cannot be parsed.
func (res *Resolver) ClientIP(r *http.Request) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !res.isTrusted(peer) {
		return peer
	}
	// Walk the hops right to left: the rightmost ones were appended by our
	// own proxies; the first untrusted hop is the client.
	hops := r.Header.Values("X-Forwarded-For")
	addr := peer
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return addr // garbage: stop at the last hop we could trust
			}
			addr = hop.Unmap()
			if !res.isTrusted(addr) {
				return addr
			}
		}
	}
	return addr
}

// Middleware stores the client address in each request's context.
func (res *Resolver) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := res.ClientIP(r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), key{}, ip)))
	})
}

type key struct{}

// From returns the client address stored by Middleware.
func From(ctx context.Context) (netip.Addr, bool) {
	ip, ok := ctx.Value(key{}).(netip.Addr)
	return ip, ok && ip.IsValid()
}

func (res *Resolver) isTrusted(ip netip.Addr) bool {
	for _, p := range res.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func parseAddr(hostport string) netip.Addr {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}

// Network returns the address under which a client is counted by limits
// and lockouts: an IPv4 address as it is (an IPv4-mapped IPv6 address as
// its IPv4 address), and an IPv6 address as its /64, because one
// subscriber is routinely given a whole /64 and could otherwise rotate
// through 2^64 addresses, each with a budget of its own. Zones are
// dropped.
func Network(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64) // cannot fail: 64 bits fit any IPv6 address
		return p.Addr()
	}
	return ip
}
