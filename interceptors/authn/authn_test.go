package authn_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/internal/testservice"
	"github.com/connectguard/guard/interceptors/policy"
)

// tokens accepts "good", says the token expired for "expired", fails
// outright for "broken", and answers no principal and no error for
// "nobody"; any other token is invalid.
type tokens struct{}

func (tokens) VerifyToken(_ context.Context, tok string) (*authn.Principal, error) {
	switch tok {
	case "good":
		return &authn.Principal{UserID: "u-token", Roles: []string{"reader"}, Method: authn.MethodAccessToken}, nil
	case "expired":
		return nil, fmt.Errorf("verify token: %w", authn.ErrExpired)
	case "broken":
		return nil, errors.New("database is down: open /var/lib/guard/guard.db")
	case "nobody":
		return nil, nil
	}
	return nil, fmt.Errorf("verify token: %w", authn.ErrInvalid)
}

// keys accepts the API key "gk_good".
type keys struct{}

func (keys) VerifyAPIKey(_ context.Context, key string) (*authn.Principal, error) {
	if key == "gk_good" {
		return &authn.Principal{UserID: "u-key", Roles: []string{"reader"}, Scoped: true, Method: authn.MethodAPIKey, KeyID: "k1"}, nil
	}
	return nil, authn.ErrInvalid
}

// sessions accepts the session cookie "s-good".
type sessions struct{}

func (sessions) VerifySession(_ context.Context, cookie string) (*authn.Principal, error) {
	if cookie == "s-good" {
		return &authn.Principal{UserID: "u-cookie", Roles: []string{"reader"}, Method: authn.MethodSessionCookie, SessionID: "s1"}, nil
	}
	return nil, authn.ErrInvalid
}

const (
	realm      = "test"
	cookieName = "sid"
	appOrigin  = "https://app.example"
)

func newInterceptor(t testing.TB, table *policy.Table, log *testservice.Log) *authn.Interceptor {
	t.Helper()
	return authn.NewInterceptor(table, tokens{},
		authn.WithRealm(realm), authn.WithLogger(log.Logger),
		authn.WithAPIKeys("gk_", keys{}),
		authn.WithSessionCookie(cookieName, sessions{}, []string{appOrigin}))
}

func testTable(t testing.TB) *policy.Table {
	t.Helper()
	table, err := testservice.Table()
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// shapes are a unary, a server-streaming and a bidi procedure of the test
// service, all non-public.
var shapes = []string{testservice.GetItem, testservice.ListItems, testservice.SyncItems}

func shortName(procedure string) string {
	return procedure[strings.LastIndex(procedure, "/")+1:]
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// refusals are calls authn refuses. early ones are refused for their
// headers alone, so Refuse (the HTTP layer's check) refuses them too.
var refusals = []struct {
	name   string
	header http.Header
	code   connect.Code
	msg    string
	// params of the Bearer challenge, after the realm ("" for none).
	params string
	early  bool
}{
	{"no_credential", nil, connect.CodeUnauthenticated, "authentication required", "", true},
	{"two_authorization_headers", header("Authorization", "Bearer good", "Authorization", "Bearer good"), connect.CodeUnauthenticated, "more than one credential", `error="invalid_request"`, true},
	{"bearer_and_api_key", header("Authorization", "Bearer good", "X-API-Key", "gk_good"), connect.CodeUnauthenticated, "more than one credential", `error="invalid_request"`, true},
	{"bearer_and_cookie", header("Authorization", "Bearer good", "Cookie", "sid=s-good"), connect.CodeUnauthenticated, "more than one credential", `error="invalid_request"`, true},
	{"two_api_keys", header("X-API-Key", "gk_good", "X-API-Key", "gk_good"), connect.CodeUnauthenticated, "more than one credential", `error="invalid_request"`, true},
	{"two_cookies", header("Cookie", "sid=s-good; sid=s-good"), connect.CodeUnauthenticated, "more than one credential", `error="invalid_request"`, true},
	{"two_cookie_lines", header("Cookie", "sid=s-good", "Cookie", "sid=s-good"), connect.CodeUnauthenticated, "more than one credential", `error="invalid_request"`, true},
	{"wrong_scheme", header("Authorization", "Basic dTpw"), connect.CodeUnauthenticated, "invalid credentials", `error="invalid_request"`, true},
	{"scheme_without_token", header("Authorization", "Bearer"), connect.CodeUnauthenticated, "invalid credentials", `error="invalid_request"`, true},
	{"token_too_long", header("Authorization", "Bearer "+strings.Repeat("a", 4097)), connect.CodeUnauthenticated, "invalid credentials", `error="invalid_request"`, true},
	{"api_key_too_long", header("X-API-Key", strings.Repeat("a", 4097)), connect.CodeUnauthenticated, "invalid credentials", `error="invalid_request"`, true},
	{"empty_cookie", header("Cookie", "sid="), connect.CodeUnauthenticated, "invalid credentials", `error="invalid_request"`, true},
	{"unknown_token", header("Authorization", "Bearer forged"), connect.CodeUnauthenticated, "invalid credentials", `error="invalid_token"`, false},
	{"verifier_without_principal", header("Authorization", "bearer nobody"), connect.CodeUnauthenticated, "invalid credentials", `error="invalid_token"`, false},
	{"expired_token", header("Authorization", "Bearer expired"), connect.CodeUnauthenticated, "credentials expired", `error="invalid_token", error_description="expired"`, false},
	{"unknown_api_key_as_bearer", header("Authorization", "Bearer gk_forged"), connect.CodeUnauthenticated, "invalid credentials", `error="invalid_token"`, false},
	{"unknown_api_key", header("X-API-Key", "gk_forged"), connect.CodeUnauthenticated, "invalid credentials", `error="invalid_token"`, false},
	{"unknown_session", header("Cookie", "sid=s-forged"), connect.CodeUnauthenticated, "invalid credentials", `error="invalid_token"`, false},
	// The CSRF defence of cookie calls (checkCrossSite). Its refusal of
	// form and text/plain content types cannot be reached through
	// connect-go, which answers those content types itself.
	{"cookie_cross_site", header("Cookie", "sid=s-good", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"), connect.CodePermissionDenied, "cross-site request refused", "", false},
	{"cookie_same_site_other_origin", header("Cookie", "sid=s-good", "Sec-Fetch-Site", "same-site", "Origin", "https://evil.app.example"), connect.CodePermissionDenied, "cross-site request refused", "", false},
	{"cookie_cross_site_without_origin", header("Cookie", "sid=s-good", "Sec-Fetch-Site", "cross-site"), connect.CodePermissionDenied, "cross-site request refused", "", false},
	{"cookie_other_origin_without_fetch_metadata", header("Cookie", "sid=s-good", "Origin", "https://evil.example"), connect.CodePermissionDenied, "cross-site request refused", "", false},
}

// contentType is what a client of protocol sends to procedure.
func contentType(protocol, procedure string) string {
	switch {
	case protocol == connect.ProtocolGRPC:
		return "application/grpc"
	case protocol == connect.ProtocolGRPCWeb:
		return "application/grpc-web+proto"
	case procedure == testservice.GetItem:
		return "application/proto"
	}
	return "application/connect+proto"
}

// TestRefusals: every refusal of authn, on unary, server-streaming and bidi
// calls over the three protocols, with its code, its message and the
// challenge the protocol allows; the handler is never reached; Refuse
// agrees with the interceptor on the calls it can judge from the headers.
func TestRefusals(t *testing.T) {
	t.Parallel()
	svc := testservice.NewService(nil)
	log := testservice.NewLog()
	a := newInterceptor(t, testTable(t), log)
	srv := testservice.Start(svc, connect.WithInterceptors(a))
	t.Cleanup(srv.Close)

	for _, tt := range refusals {
		for _, procedure := range shapes {
			for _, protocol := range testservice.Protocols() {
				t.Run(tt.name+"/"+shortName(procedure)+"/"+protocol, func(t *testing.T) {
					t.Parallel()
					id := t.Name()
					res := testservice.Call(t.Context(), srv.Client(protocol), procedure, tt.header, id)
					if got, want := res.Code(), tt.code.String(); got != want {
						t.Fatalf("code = %s (%v), want %s", got, res.Err, want)
					}
					if got, want := res.Message(), tt.msg; got != want {
						t.Errorf("message = %q, want %q", got, want)
					}
					if reached := reachedWith(svc, id); len(reached) > 0 {
						t.Errorf("handler reached by %v, want nothing", reached)
					}
					wantChallenge := []string(nil)
					if tt.code == connect.CodeUnauthenticated && protocol == connect.ProtocolConnect {
						wantChallenge = []string{challenge(tt.params)}
					}
					if got := res.Meta.Values("WWW-Authenticate"); !slices.Equal(got, wantChallenge) {
						t.Errorf("WWW-Authenticate = %q, want %q", got, wantChallenge)
					}

					r := httptest.NewRequest(http.MethodPost, procedure, nil)
					r.Header = tt.header.Clone()
					if r.Header == nil {
						r.Header = http.Header{}
					}
					r.Header.Set("Content-Type", contentType(protocol, procedure))
					early := a.Refuse(r)
					switch {
					case !tt.early && early != nil:
						t.Errorf("Refuse() = %v, want nil: the headers alone do not decide", early)
					case tt.early && early == nil:
						t.Errorf("Refuse() = nil, want the interceptor's refusal %v", res.Err)
					case tt.early:
						if got, want := early.Code().String(), res.Code(); got != want {
							t.Errorf("Refuse() code = %s, want the interceptor's %s", got, want)
						}
						if got, want := early.Message(), res.Message(); got != want {
							t.Errorf("Refuse() message = %q, want the interceptor's %q", got, want)
						}
						if got := early.Meta().Values("WWW-Authenticate"); !slices.Equal(got, wantChallenge) {
							t.Errorf("Refuse() WWW-Authenticate = %q, want %q", got, wantChallenge)
						}
					}
				})
			}
		}
	}
}

func challenge(params string) string {
	if params == "" {
		return `Bearer realm="` + realm + `"`
	}
	return `Bearer realm="` + realm + `", ` + params
}

func reachedWith(svc *testservice.Service, id string) []testservice.Reached {
	var out []testservice.Reached
	for _, r := range svc.Reached() {
		if r.ID == id {
			out = append(out, r)
		}
	}
	return out
}

// TestVerifierFailure: a verifier that fails for its own reasons (not
// ErrInvalid or ErrExpired) gets internal with only the request id, the
// detail logged under that id; the client is not told to log in again.
func TestVerifierFailure(t *testing.T) {
	t.Parallel()
	svc := testservice.NewService(nil)
	log := testservice.NewLog()
	srv := testservice.Start(svc, connect.WithInterceptors(newInterceptor(t, testTable(t), log)))
	t.Cleanup(srv.Close)

	for _, procedure := range shapes {
		for _, protocol := range testservice.Protocols() {
			t.Run(shortName(procedure)+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				id := t.Name()
				res := testservice.Call(t.Context(), srv.Client(protocol), procedure, testservice.Bearer("broken"), id)
				if got, want := res.Code(), "internal"; got != want {
					t.Fatalf("code = %s (%v), want %s", got, res.Err, want)
				}
				requestID := res.Meta.Get("X-Request-Id")
				if requestID == "" {
					t.Fatal("no X-Request-Id in the response")
				}
				if got, want := res.Message(), "internal error (request id "+requestID+")"; got != want {
					t.Errorf("message = %q, want %q", got, want)
				}
				if got := res.Meta.Values("WWW-Authenticate"); len(got) > 0 {
					t.Errorf("WWW-Authenticate = %q, want none on an internal error", got)
				}
				if reached := reachedWith(svc, id); len(reached) > 0 {
					t.Errorf("handler reached by %v, want nothing", reached)
				}
				lines := log.Lines(map[string]string{"request_id": requestID})
				if len(lines) != 1 {
					t.Fatalf("got %d log lines for request id %s, want 1; log:\n%s", len(lines), requestID, log)
				}
				line := lines[0]
				for k, want := range map[string]string{"level": "ERROR", "msg": "credential check failed", "procedure": procedure} {
					if got, _ := line[k].(string); got != want {
						t.Errorf("log %s = %q, want %q", k, got, want)
					}
				}
				if got, _ := line["error"].(string); !strings.Contains(got, "database is down") {
					t.Errorf("log error = %q, want the verifier's error", got)
				}
			})
		}
	}
}

// TestAuthenticated: each kind of credential, alone, reaches the handler
// with its principal in the context.
func TestAuthenticated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header http.Header
		user   string
		method authn.Method
	}{
		{"bearer_token", testservice.Bearer("good"), "u-token", authn.MethodAccessToken},
		{"bearer_scheme_any_case", header("Authorization", "bEaReR good"), "u-token", authn.MethodAccessToken},
		{"api_key_as_bearer", testservice.Bearer("gk_good"), "u-key", authn.MethodAPIKey},
		{"api_key_header", header("X-API-Key", "gk_good"), "u-key", authn.MethodAPIKey},
		{"cookie_no_fetch_metadata", header("Cookie", "other=x; sid=s-good"), "u-cookie", authn.MethodSessionCookie},
		{"cookie_same_origin", header("Cookie", "sid=s-good", "Sec-Fetch-Site", "same-origin", "Origin", "https://evil.example"), "u-cookie", authn.MethodSessionCookie},
		{"cookie_cross_site_allowed_origin", header("Cookie", "sid=s-good", "Sec-Fetch-Site", "cross-site", "Origin", appOrigin), "u-cookie", authn.MethodSessionCookie},
		{"cookie_allowed_origin_without_fetch_metadata", header("Cookie", "sid=s-good", "Origin", appOrigin), "u-cookie", authn.MethodSessionCookie},
		{"unparseable_cookie_line_ignored", header("Authorization", "Bearer good", "Cookie", `sid=s-good; other="x`), "u-token", authn.MethodAccessToken},
	}
	// The hook answers already_exists naming the principal it saw.
	svc := testservice.NewService(func(ctx context.Context, _, _ string) error {
		p, ok := authn.PrincipalFrom(ctx)
		if !ok {
			return connect.NewError(connect.CodeFailedPrecondition, errors.New("no principal in the handler"))
		}
		return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("%s %d", p.UserID, p.Method))
	})
	srv := testservice.Start(svc, connect.WithInterceptors(newInterceptor(t, testTable(t), testservice.NewLog())))
	t.Cleanup(srv.Close)

	for _, tt := range tests {
		for _, procedure := range shapes {
			for _, protocol := range testservice.Protocols() {
				t.Run(tt.name+"/"+shortName(procedure)+"/"+protocol, func(t *testing.T) {
					t.Parallel()
					res := testservice.Call(t.Context(), srv.Client(protocol), procedure, tt.header, t.Name())
					if got, want := res.Code(), "already_exists"; got != want {
						t.Fatalf("code = %s (%v), want %s from the handler", got, res.Err, want)
					}
					if got, want := res.Message(), fmt.Sprintf("%s %d", tt.user, tt.method); got != want {
						t.Errorf("principal in the handler = %q, want %q", got, want)
					}
				})
			}
		}
	}
}

// TestPublic: a public method is not authenticated: any credential, even
// a malformed or doubled one, is ignored, and the handler sees no
// principal. Refuse lets such calls through.
func TestPublic(t *testing.T) {
	t.Parallel()
	svc := testservice.NewService(func(ctx context.Context, _, _ string) error {
		if p, ok := authn.PrincipalFrom(ctx); ok {
			return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("principal %q in a public call", p.UserID))
		}
		return nil
	})
	a := newInterceptor(t, testTable(t), testservice.NewLog())
	srv := testservice.Start(svc, connect.WithInterceptors(a))
	t.Cleanup(srv.Close)
	for _, tt := range append(refusals, struct {
		name   string
		header http.Header
		code   connect.Code
		msg    string
		params string
		early  bool
	}{name: "good_token", header: testservice.Bearer("good")}) {
		for _, protocol := range testservice.Protocols() {
			t.Run(tt.name+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				res := testservice.Call(t.Context(), srv.Client(protocol), testservice.Ping, tt.header, t.Name())
				if res.Err != nil {
					t.Fatalf("Ping error = %v, want none", res.Err)
				}
				if got := reachedWith(svc, t.Name()); len(got) != 1 {
					t.Errorf("handler reached %d times, want once", len(got))
				}
				r := httptest.NewRequest(http.MethodPost, testservice.Ping, nil)
				r.Header = tt.header.Clone()
				if err := a.Refuse(r); err != nil {
					t.Errorf("Refuse() = %v, want nil for a public method", err)
				}
			})
		}
	}
}

// TestHandlerChallenge: an unauthenticated error from the handler itself
// (a failed login) leaves with the challenge its protocol allows: the
// realm added on Connect, none at all on gRPC and gRPC-Web.
func TestHandlerChallenge(t *testing.T) {
	t.Parallel()
	svc := testservice.NewService(func(context.Context, string, string) error {
		return authn.Unauthenticated("wrong email or password", `error="invalid_token"`)
	})
	srv := testservice.Start(svc, connect.WithInterceptors(newInterceptor(t, testTable(t), testservice.NewLog())))
	t.Cleanup(srv.Close)
	for _, protocol := range testservice.Protocols() {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			res := testservice.Call(t.Context(), srv.Client(protocol), testservice.Ping, nil, "login")
			if got, want := res.Code(), "unauthenticated"; got != want {
				t.Fatalf("code = %s (%v), want %s", got, res.Err, want)
			}
			var want []string
			if protocol == connect.ProtocolConnect {
				want = []string{challenge(`error="invalid_token"`)}
			}
			if got := res.Meta.Values("WWW-Authenticate"); !slices.Equal(got, want) {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
		})
	}
}

// TestPlainUnauthenticatedGetsChallenge: an unauthenticated error made
// without authn.Unauthenticated still gets a challenge on Connect (a 401
// must carry one), and none on gRPC and gRPC-Web.
func TestPlainUnauthenticatedGetsChallenge(t *testing.T) {
	t.Parallel()
	svc := testservice.NewService(func(context.Context, string, string) error {
		return connect.NewError(connect.CodeUnauthenticated, errors.New("session gone"))
	})
	srv := testservice.Start(svc, connect.WithInterceptors(newInterceptor(t, testTable(t), testservice.NewLog())))
	t.Cleanup(srv.Close)
	for _, protocol := range testservice.Protocols() {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			res := testservice.Call(t.Context(), srv.Client(protocol), testservice.Ping, nil, "plain")
			if got, want := res.Code(), "unauthenticated"; got != want {
				t.Fatalf("code = %s (%v), want %s", got, res.Err, want)
			}
			var want []string
			if protocol == connect.ProtocolConnect {
				want = []string{challenge("")}
			}
			if got := res.Meta.Values("WWW-Authenticate"); !slices.Equal(got, want) {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
		})
	}
}

// TestNoRealm: without WithRealm the challenge has no realm.
func TestNoRealm(t *testing.T) {
	t.Parallel()
	a := authn.NewInterceptor(testTable(t), tokens{})
	srv := testservice.Start(testservice.NewService(nil), connect.WithInterceptors(a))
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		name   string
		header http.Header
		want   string
	}{
		{"no_credential", nil, "Bearer"},
		{"unknown_token", testservice.Bearer("forged"), `Bearer error="invalid_token"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := testservice.Call(t.Context(), srv.Client(connect.ProtocolConnect), testservice.GetItem, tt.header, "x")
			if got := res.Meta.Values("WWW-Authenticate"); !slices.Equal(got, []string{tt.want}) {
				t.Errorf("WWW-Authenticate = %q, want %q", got, []string{tt.want})
			}
		})
	}
}

// TestCredentialsNotEnabled: a bearer token without a token verifier is
// invalid, and X-API-Key and cookies are not credentials unless enabled
// (the call then has none).
func TestCredentialsNotEnabled(t *testing.T) {
	t.Parallel()
	svc := testservice.NewService(nil)
	srv := testservice.Start(svc, connect.WithInterceptors(authn.NewInterceptor(testTable(t), nil)))
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		name   string
		header http.Header
		msg    string
	}{
		{"bearer_without_verifier", testservice.Bearer("good"), "invalid credentials"},
		{"api_key_not_enabled", header("X-API-Key", "gk_good"), "authentication required"},
		{"cookie_not_enabled", header("Cookie", "sid=s-good"), "authentication required"},
	} {
		for _, procedure := range shapes {
			t.Run(tt.name+"/"+shortName(procedure), func(t *testing.T) {
				t.Parallel()
				res := testservice.Call(t.Context(), srv.Client(connect.ProtocolGRPC), procedure, tt.header, t.Name())
				if got, want := res.Code(), "unauthenticated"; got != want {
					t.Fatalf("code = %s (%v), want %s", got, res.Err, want)
				}
				if got := res.Message(); got != tt.msg {
					t.Errorf("message = %q, want %q", got, tt.msg)
				}
				if reached := reachedWith(svc, t.Name()); len(reached) > 0 {
					t.Errorf("handler reached by %v, want nothing", reached)
				}
			})
		}
	}
}

// TestNoPolicy: a procedure missing from the table is denied, whatever
// the credential; Refuse leaves it to the interceptor.
func TestNoPolicy(t *testing.T) {
	t.Parallel()
	empty, err := policy.NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := testservice.NewService(nil)
	a := newInterceptor(t, empty, testservice.NewLog())
	srv := testservice.Start(svc, connect.WithInterceptors(a))
	t.Cleanup(srv.Close)
	for _, procedure := range append([]string{testservice.Ping}, shapes...) {
		for _, protocol := range testservice.Protocols() {
			for name, h := range map[string]http.Header{"good_token": testservice.Bearer("good"), "no_credential": nil} {
				t.Run(shortName(procedure)+"/"+protocol+"/"+name, func(t *testing.T) {
					t.Parallel()
					res := testservice.Call(t.Context(), srv.Client(protocol), procedure, h, t.Name())
					if got, want := res.Code(), "permission_denied"; got != want {
						t.Fatalf("code = %s (%v), want %s", got, res.Err, want)
					}
					if got, want := res.Message(), "no access policy for this procedure"; got != want {
						t.Errorf("message = %q, want %q", got, want)
					}
					if reached := reachedWith(svc, t.Name()); len(reached) > 0 {
						t.Errorf("handler reached by %v, want nothing", reached)
					}
					r := httptest.NewRequest(http.MethodPost, procedure, nil)
					if err := a.Refuse(r); err != nil {
						t.Errorf("Refuse() = %v, want nil: unknown procedures are left to the interceptor", err)
					}
				})
			}
		}
	}
}

func TestContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if p, ok := authn.PrincipalFrom(ctx); ok {
		t.Errorf("PrincipalFrom(empty) = %v, true; want none", p)
	}
	if _, err := authn.Caller(ctx); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("Caller(empty) error = %v, want unauthenticated", err)
	}
	if p, ok := authn.PrincipalFrom(authn.NewContext(ctx, nil)); ok {
		t.Errorf("PrincipalFrom(NewContext(nil)) = %v, true; want none", p)
	}
	want := &authn.Principal{UserID: "u1", Roles: []string{"reader"}}
	ctx = authn.NewContext(ctx, want)
	if got, ok := authn.PrincipalFrom(ctx); !ok || got != want {
		t.Errorf("PrincipalFrom(NewContext(p)) = %v, %v; want p, true", got, ok)
	}
	if got, err := authn.Caller(ctx); err != nil || got != want {
		t.Errorf("Caller(NewContext(p)) = %v, %v; want p", got, err)
	}
	if !want.HasAnyRole([]string{"writer", "reader"}) || want.HasAnyRole([]string{"writer"}) || want.HasAnyRole(nil) {
		t.Errorf("HasAnyRole: want any-of over Roles")
	}
}

// TestObserve: interceptors outside authn learn the caller through the
// record Observe returns; Identify names the user of a public call only
// when authn named none.
func TestObserve(t *testing.T) {
	t.Parallel()
	ctx, o := authn.Observe(context.Background())
	if got := o.UserID(); got != "" {
		t.Errorf("UserID() before the call = %q, want empty", got)
	}
	if ctx2, o2 := authn.Observe(ctx); o2 != o || ctx2 != ctx {
		t.Errorf("Observe(observed ctx) made a second record, want the same one")
	}
	authn.Identify(ctx, "u-login")
	if got, want := o.UserID(), "u-login"; got != want {
		t.Errorf("UserID() after Identify = %q, want %q", got, want)
	}
	authn.Identify(ctx, "u-other")
	if got, want := o.UserID(), "u-login"; got != want {
		t.Errorf("UserID() after a second Identify = %q, want %q (the first stays)", got, want)
	}
	if _, ok := authn.PrincipalFrom(ctx); ok {
		t.Errorf("Identify authenticated the context, want no principal")
	}
	var none *authn.Observed
	if got := none.UserID(); got != "" {
		t.Errorf("nil Observed UserID() = %q, want empty", got)
	}
	authn.Identify(context.Background(), "u-nobody") // no record: nothing to do, no panic
}

// TestObserveThroughChain: a call authenticated by the interceptor fills
// the record of an outer interceptor.
func TestObserveThroughChain(t *testing.T) {
	t.Parallel()
	users := make(chan string, 1)
	outer := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			ctx, o := authn.Observe(ctx)
			res, err := next(ctx, req)
			users <- o.UserID()
			return res, err
		}
	})
	srv := testservice.Start(testservice.NewService(nil),
		connect.WithInterceptors(outer, newInterceptor(t, testTable(t), testservice.NewLog())))
	t.Cleanup(srv.Close)
	res := testservice.Call(t.Context(), srv.Client(connect.ProtocolConnect), testservice.GetItem, testservice.Bearer("good"), "x")
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if got, want := <-users, "u-token"; got != want {
		t.Errorf("observed user = %q, want %q", got, want)
	}
}

func TestUnauthenticated(t *testing.T) {
	t.Parallel()
	err := authn.Unauthenticated("session expired", `error="invalid_token"`)
	if got, want := err.Code(), connect.CodeUnauthenticated; got != want {
		t.Errorf("code = %v, want %v", got, want)
	}
	if got, want := err.Message(), "session expired"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if got, want := err.Meta().Get("WWW-Authenticate"), `Bearer error="invalid_token"`; got != want {
		t.Errorf("WWW-Authenticate = %q, want %q", got, want)
	}
}

// TestClientCalls: on a client, authn neither checks nor strips anything.
func TestClientCalls(t *testing.T) {
	t.Parallel()
	srv := testservice.Start(testservice.NewService(nil))
	t.Cleanup(srv.Close)
	for _, protocol := range testservice.Protocols() {
		client := srv.Client(protocol, connect.WithInterceptors(newInterceptor(t, testTable(t), testservice.NewLog())))
		for _, procedure := range shapes {
			if res := testservice.Call(t.Context(), client, procedure, nil, "a"); res.Err != nil {
				t.Errorf("%s over %s: error = %v, want none", shortName(procedure), protocol, res.Err)
			}
		}
	}
}
