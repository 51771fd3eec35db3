package server_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"github.com/connectguard/guard/clients/goclient"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/internal/servertest"
)

// headersOf returns the response headers (and, over gRPC, trailers) of a
// call's outcome: the response's on success, the error's metadata on a
// refusal.
func headersOf(res interface{ Header() http.Header }, err error) http.Header {
	if err != nil {
		var ce *connect.Error
		if errors.As(err, &ce) {
			return ce.Meta()
		}
		return nil
	}
	return res.Header()
}

// TestSecurityHeaders: every protocol's responses, successes and refusals
// alike, carry nosniff, no-store and no-referrer, so no cache keeps a
// token-bearing Login answer or an authenticated body, and no browser
// sniffs a body into HTML.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	member := srv.CreateUser("headers@example.com", "member")
	ctx := context.Background()
	for _, p := range protocols {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			anon, m := srv.Client(p, ""), srv.Client(p, member.Token)
			calls := map[string]http.Header{}
			login, err := anon.Auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{Email: member.Email, Password: member.Password}))
			calls["login_ok"] = headersOf(login, err)
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			bad, err := anon.Auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{Email: member.Email, Password: "wrong password 123"}))
			calls["login_refused"] = headersOf(bad, err)
			who, err := m.Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
			calls["authenticated_ok"] = headersOf(who, err)
			note, err := anon.Notes.ListNotes(ctx, connect.NewRequest(&notesv1.ListNotesRequest{}))
			calls["unauthenticated"] = headersOf(note, err)
			for name, h := range calls {
				if h == nil {
					t.Errorf("%s: no headers", name)
					continue
				}
				for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
					if got := h.Get(k); got != want {
						t.Errorf("%s: got %s %q, want %q", name, k, got, want)
					}
				}
				if got := h.Get("Strict-Transport-Security"); got != "" {
					t.Errorf("%s: got Strict-Transport-Security %q over cleartext, want none", name, got)
				}
			}
		})
	}
	t.Run("per_ip_limit_refusal", func(t *testing.T) {
		t.Parallel()
		limited := servertest.Start(t, "-ip-rate-limit=1")
		h := http.Header{"Content-Type": {"application/json"}}
		var res, first *http.Response
		for i := range 6 {
			res, _ = send(t, limited, http.MethodPost, "/guard.auth.v1.AuthService/WhoAmI", "{}", h)
			if i == 1 {
				first = res
			}
		}
		if res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("got HTTP %d, want 429", res.StatusCode)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("got headers %v, want nosniff and no-store on the 429", res.Header)
		}
		// The refusals are logged, the first with its request id, the
		// others summed up later rather than one line each.
		logs := limited.Logs()
		if !strings.Contains(logs, "per-IP rate limit refused a request") || !strings.Contains(logs, first.Header.Get("X-Request-Id")) {
			t.Errorf("got log %s, want the first refusal logged with request id %s", logs, first.Header.Get("X-Request-Id"))
		}
		if n := strings.Count(logs, "per-IP rate limit refused a request"); n != 1 {
			t.Errorf("got %d refusal lines for 5 refusals within 10 s, want 1", n)
		}
	})
}

// TestReflection: gRPC reflection describes every service, AdminService
// included, so it is off unless -reflection asks for it.
func TestReflection(t *testing.T) {
	t.Parallel()
	list := func(srv *servertest.Server) ([]string, error) {
		c := grpcreflect.NewClient(srv.HTTPClient(), srv.URL, connect.WithGRPC())
		stream := c.NewStream(context.Background())
		defer stream.Close()
		names, err := stream.ListServices()
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = string(n)
		}
		return out, err
	}
	t.Run("off_by_default", func(t *testing.T) {
		t.Parallel()
		names, err := list(servertest.Start(t))
		if connect.CodeOf(err) != connect.CodeUnimplemented {
			t.Errorf("got services %v, error %v; want unimplemented", names, err)
		}
	})
	t.Run("on_with_flag", func(t *testing.T) {
		t.Parallel()
		names, err := list(servertest.Start(t, "-reflection"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(names, " "); !strings.Contains(got, "guard.admin.v1.AdminService") {
			t.Errorf("got services %q, want AdminService among them", got)
		}
	})
}

// TestTLS: with -tls-cert and -tls-key the server speaks HTTPS, HTTP/2 is
// negotiated by ALPN (so gRPC works over TLS), and every response carries
// Strict-Transport-Security.
func TestTLS(t *testing.T) {
	t.Parallel()
	srv := servertest.StartTLS(t)
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("got URL %s, want https", srv.URL)
	}
	ctx := context.Background()
	tok := srv.AdminToken()
	for _, p := range protocols {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			res, err := srv.Client(p, tok).Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Header().Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
				t.Errorf("got Strict-Transport-Security %q, want max-age=...", got)
			}
		})
	}
	t.Run("alpn_h2", func(t *testing.T) {
		t.Parallel()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/guard.auth.v1.AuthService/WhoAmI", bytes.NewReader([]byte("{}")))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := srv.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.ProtoMajor != 2 || res.TLS == nil || res.TLS.NegotiatedProtocol != "h2" {
			t.Errorf("got %s, ALPN %q; want HTTP/2 negotiated as h2", res.Proto, res.TLS.NegotiatedProtocol)
		}
		if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("got HTTP %d with HSTS %q, want 401 with HSTS", res.StatusCode, res.Header.Get("Strict-Transport-Security"))
		}
	})
	t.Run("cleartext_refused", func(t *testing.T) {
		t.Parallel()
		plain := goclient.New(strings.Replace(srv.URL, "https://", "http://", 1), goclient.WithProtocol(goclient.GRPC))
		_, err := plain.Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
		if err == nil {
			t.Error("a cleartext gRPC call to the TLS port succeeded")
		}
	})
}

// TestCleartextBeyondLoopback: the server will not serve cleartext on a
// public address unless a TLS-terminating proxy is declared, and then it
// says so in the log.
func TestCleartextBeyondLoopback(t *testing.T) {
	t.Parallel()
	env := map[string]string{"GUARD_ADMIN_PASSWORD": servertest.AdminPassword}
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		var log bytes.Buffer
		_, _, err := servertest.Launch(context.Background(), []string{"-db=" + t.TempDir() + "/g.db", "-addr=0.0.0.0:0"}, env, &log)
		if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("got error %v, want a refusal naming the address", err)
		}
	})
	t.Run("behind_proxy", func(t *testing.T) {
		t.Parallel()
		var log servertest.Log
		ctx, cancel := context.WithCancel(context.Background())
		_, wait, err := servertest.Launch(ctx, []string{"-db=" + t.TempDir() + "/g.db", "-addr=0.0.0.0:0", "-trusted-proxies=10.0.0.1"}, env, &log)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		cancel()
		if err := wait(); err != nil {
			t.Error(err)
		}
		if !strings.Contains(log.String(), "serving cleartext HTTP beyond loopback") {
			t.Errorf("got log %s, want a warning about cleartext", log.String())
		}
	})
}

// TestChallengeOnlyWhereLegal: unauthenticated answers carry
// WWW-Authenticate on Connect, with the realm, and never on gRPC or
// gRPC-Web, where it would be a trailer (which HTTP forbids, and which
// made the HTTP/2 server log a warning per call).
func TestChallengeOnlyWhereLegal(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	for _, p := range protocols {
		anon := srv.Client(p, "")
		_, errWho := anon.Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
		_, errLogin := anon.Auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{Email: "nobody@example.com", Password: "not a password 1"}))
		_, errBad := srv.Client(p, "garbage").Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
		for name, err := range map[string]error{"no_credential": errWho, "failed_login": errLogin, "bad_token": errBad} {
			var ce *connect.Error
			if !errors.As(err, &ce) || ce.Code() != connect.CodeUnauthenticated {
				t.Fatalf("%s %s: got %v, want unauthenticated", p, name, err)
			}
			got := ce.Meta().Get("WWW-Authenticate")
			switch p {
			case goclient.Connect, goclient.ConnectJSON:
				if !strings.HasPrefix(got, `Bearer realm="guard"`) {
					t.Errorf("%s %s: got WWW-Authenticate %q, want a Bearer challenge with the realm", p, name, got)
				}
			default:
				if got != "" {
					t.Errorf("%s %s: got WWW-Authenticate %q in the metadata, want none", p, name, got)
				}
			}
		}
	}
	if logs := srv.Logs(); strings.Contains(strings.ToLower(logs), "trailer") {
		t.Errorf("the server logged about trailers:\n%s", logs)
	}
}
