package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/internal/servertest"
)

// policyNames returns the quota names of a response's RateLimit-Policy.
func policyNames(h http.Header) string {
	var names []string
	for _, v := range h.Values("RateLimit-Policy") {
		for _, item := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(item), ";")
			names = append(names, strings.Trim(name, `"`))
		}
	}
	return strings.Join(names, " ")
}

// TestRateLimitHeadersOnEveryResponse: every response governed by a quota
// says so, successes included, on Connect and gRPC, and browsers on an
// allowed origin may read the fields.
func TestRateLimitHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-cors-origins="+allowedOrigin)
	m := srv.CreateUser("headers@example.com", "member")
	ctx := context.Background()
	for _, p := range []goclient.Protocol{goclient.Connect, goclient.GRPC} {
		who, err := srv.Client(p, m.Token).Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		if got := policyNames(who.Header()); got != "ip user" {
			t.Errorf("%s WhoAmI: RateLimit-Policy names %q, want \"ip user\"", p, got)
		}
		if got := who.Header().Values("RateLimit"); len(got) != 2 || !strings.HasPrefix(got[0], `"ip";r=`) {
			t.Errorf("%s WhoAmI: RateLimit = %q, want the state of both quotas", p, got)
		}
		login, err := srv.Client(p, "").Auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{Email: m.Email, Password: m.Password}))
		if err != nil {
			t.Fatal(err)
		}
		if got := policyNames(login.Header()); got != "ip method" {
			t.Errorf("%s Login: RateLimit-Policy names %q, want \"ip method\"", p, got)
		}
		if got := strings.Join(login.Header().Values("RateLimit-Policy"), ","); !strings.Contains(got, `"method";q=20;w=60`) {
			t.Errorf("%s Login: RateLimit-Policy %q, want Login's 20 per minute", p, got)
		}
	}
	res, _ := post(t, srv, procWhoAmI, `{}`, http.Header{"Authorization": {"Bearer " + m.Token}, "Origin": {allowedOrigin}})
	exposed := strings.ToLower(res.Header.Get("Access-Control-Expose-Headers"))
	for _, h := range []string{"ratelimit-policy", "ratelimit", "retry-after"} {
		if !strings.Contains(exposed, h) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, h)
		}
	}
}

// TestUserBudgetSharedAcrossCredentials: one user's budget over all
// methods is spent by every credential of theirs, on every protocol.
func TestUserBudgetSharedAcrossCredentials(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-user-rate-limit=5")
	m := srv.CreateUser("budget@example.com", "member")
	ctx := context.Background()
	key := newAPIKey(t, srv.Client(goclient.Connect, m.Token), "k", "notes:read").GetKey() // 1
	cookie, _, _ := cookieLogin(t, srv, m.Email, m.Password, nil)
	calls := []func() error{
		func() error { // 2: the access token over Connect
			_, err := srv.Client(goclient.Connect, m.Token).Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
			return err
		},
		func() error { // 3: the API key over gRPC
			_, err := srv.Client(goclient.GRPC, key).Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
			return err
		},
		func() error { // 4: the cookie over plain Connect JSON
			res, body := post(t, srv, procWhoAmI, `{}`, withCookie(cookie))
			if res.StatusCode != http.StatusOK {
				return errors.New(body)
			}
			return nil
		},
		func() error { // 5: the API key over gRPC-Web
			_, err := srv.Client(goclient.GRPCWeb, key).Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
			return err
		},
	}
	for i, call := range calls {
		if err := call(); err != nil {
			t.Fatalf("call %d: %v", i+2, err)
		}
	}
	// The sixth call, whatever the credential, finds the budget spent.
	res, body := post(t, srv, procWhoAmI, `{}`, withCookie(cookie))
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(strings.Join(res.Header.Values("RateLimit"), ","), `"user";r=0`) {
		t.Errorf("sixth call: got HTTP %d %s RateLimit %q, want 429 with the user's quota spent", res.StatusCode, body, res.Header.Values("RateLimit"))
	}
	// Another user has their own.
	o := srv.CreateUser("other-budget@example.com", "member")
	if _, err := srv.Client(goclient.Connect, o.Token).Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{})); err != nil {
		t.Errorf("another user: %v", err)
	}
}

// TestIPBudgetPer64: addresses of one IPv6 /64 share one budget; the
// next /64 has its own.
func TestIPBudgetPer64(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-ip-rate-limit=3", "-trusted-proxies=127.0.0.1")
	from := func(ip string) int {
		res, _ := post(t, srv, "/guard.auth.v1.AuthService/Refresh", `{"refreshToken":"grt_x"}`, http.Header{"X-Forwarded-For": {ip}})
		return res.StatusCode
	}
	for _, ip := range []string{"2001:db8:1:1::1", "2001:db8:1:1::2", "2001:db8:1:1:ffff:ffff:ffff:ffff"} {
		if code := from(ip); code == http.StatusTooManyRequests {
			t.Fatalf("%s: refused within the /64's budget", ip)
		}
	}
	if code := from("2001:db8:1:1:abcd::9"); code != http.StatusTooManyRequests {
		t.Errorf("a fourth address of the same /64: got HTTP %d, want 429", code)
	}
	if code := from("2001:db8:1:2::1"); code == http.StatusTooManyRequests {
		t.Error("the next /64 was refused: it has a budget of its own")
	}
}
