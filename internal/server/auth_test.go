package server_test

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	"github.com/connectguard/guard/gen/guard/admin/v1/adminv1connect"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/gen/guard/auth/v1/authv1connect"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/gen/guard/notes/v1/notesv1connect"
	"github.com/connectguard/guard/internal/servertest"
	"github.com/connectguard/guard/service/auth"
	"github.com/connectguard/guard/store"
	_ "github.com/mattn/go-sqlite3" // the "sqlite3" driver, to age rows behind the server's back
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The procedures the raw (curl-like) calls below name.
const (
	procLogin          = authv1connect.AuthServiceLoginProcedure
	procRefresh        = authv1connect.AuthServiceRefreshProcedure
	procLogout         = authv1connect.AuthServiceLogoutProcedure
	procWhoAmI         = authv1connect.AuthServiceWhoAmIProcedure
	procListAPIKeys    = authv1connect.AuthServiceListAPIKeysProcedure
	procCreateNote     = notesv1connect.NoteServiceCreateNoteProcedure
	testUserPassword   = "a long test password 1" // what servertest.CreateUser gives
	noteJSON           = `{"title":"pwned","body":"written by an attacker"}`
	evilOrigin         = "https://evil.example"
	allowedOrigin      = "https://app.example.com"
	moreThanOneCred    = "more than one credential"
	invalidCredentials = "invalid credentials"
)

// rpcError is the JSON body of a Connect error.
type rpcError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func errorOf(body string) rpcError {
	var e rpcError
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return rpcError{Code: "unparseable", Message: body}
	}
	return e
}

// wantRefused asserts a raw answer is the Connect error code with HTTP
// status and, when msg is not empty, message msg.
func wantRefused(t *testing.T, res *http.Response, body string, status int, code connect.Code, msg string) {
	t.Helper()
	if res.StatusCode != status {
		t.Errorf("got HTTP %d %s, want %d", res.StatusCode, body, status)
	}
	got := errorOf(body)
	if got.Code != code.String() {
		t.Errorf("got code %q (%s), want %q", got.Code, body, code)
	}
	if msg != "" && got.Message != msg {
		t.Errorf("got message %q, want %q", got.Message, msg)
	}
}

// wantUnauthenticated asserts a raw answer is a 401 unauthenticated with
// message msg and an RFC 6750 Bearer challenge.
func wantUnauthenticated(t *testing.T, res *http.Response, body, msg string) {
	t.Helper()
	wantRefused(t, res, body, http.StatusUnauthorized, connect.CodeUnauthenticated, msg)
	if got := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("got WWW-Authenticate %q, want a Bearer challenge", got)
	}
}

func bearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

// withCookie is how a browser page on the server's own origin sends the
// session cookie.
func withCookie(value string) http.Header {
	return http.Header{"Cookie": {auth.CookieName + "=" + value}, "Sec-Fetch-Site": {"same-origin"}}
}

// send makes a raw HTTP request with exactly the headers given (no
// default Content-Type, unlike post).
func send(t *testing.T, srv *servertest.Server, method, target, body string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h.Clone()
	res, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func loginJSON(email, pw string, cookie bool) string {
	b, _ := json.Marshal(map[string]any{"email": email, "password": pw, "useCookie": cookie})
	return string(b)
}

func refreshJSON(tok string) string {
	b, _ := json.Marshal(map[string]string{"refreshToken": tok})
	return string(b)
}

// login logs in for tokens and returns the whole answer (servertest.Login
// keeps only the access token).
func login(t *testing.T, srv *servertest.Server, email, pw string) *authv1.LoginResponse {
	t.Helper()
	res, err := srv.Client(goclient.Connect, "").Auth.Login(context.Background(),
		connect.NewRequest(&authv1.LoginRequest{Email: email, Password: pw}))
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	if res.Msg.GetAccessToken() == "" || res.Msg.GetRefreshToken() == "" {
		t.Fatalf("login %s: got %v, want both tokens", email, res.Msg)
	}
	return res.Msg
}

// sessionCookie returns the session cookie an answer sets, or nil.
func sessionCookie(res *http.Response) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == auth.CookieName {
			return c
		}
	}
	return nil
}

// cookieLogin logs in with use_cookie over Connect JSON, sending the extra
// headers h, and returns the cookie value and the raw answer.
func cookieLogin(t *testing.T, srv *servertest.Server, email, pw string, h http.Header) (string, *http.Response, string) {
	t.Helper()
	res, body := post(t, srv, procLogin, loginJSON(email, pw, true), h)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("cookie login %s: got HTTP %d %s", email, res.StatusCode, body)
	}
	c := sessionCookie(res)
	if c == nil || c.Value == "" {
		t.Fatalf("cookie login %s: got Set-Cookie %q, want %s", email, res.Header.Values("Set-Cookie"), auth.CookieName)
	}
	return c.Value, res, body
}

// addUser creates a user through admin without logging it in, sparing the
// login rate limit (20 a minute per IP).
func addUser(t *testing.T, admin *goclient.Client, email string, roles ...string) servertest.User {
	t.Helper()
	res, err := admin.Admin.CreateUser(context.Background(), connect.NewRequest(&adminv1.CreateUserRequest{
		Email: email, Password: testUserPassword, Roles: roles,
	}))
	if err != nil {
		t.Fatalf("create user %s: %v", email, err)
	}
	return servertest.User{ID: res.Msg.GetUser().GetId(), Email: email, Password: testUserPassword}
}

func newAPIKey(t *testing.T, c *goclient.Client, name string, scopes ...string) *authv1.CreateAPIKeyResponse {
	t.Helper()
	res, err := c.Auth.CreateAPIKey(context.Background(), connect.NewRequest(&authv1.CreateAPIKeyRequest{
		Name: name, Scopes: scopes, Ttl: durationpb.New(time.Hour),
	}))
	if err != nil {
		t.Fatalf("create api key %s: %v", name, err)
	}
	return res.Msg
}

// whoAmI asks who the holder of the headers h is.
func whoAmI(t *testing.T, srv *servertest.Server, h http.Header) (*http.Response, string, *authv1.WhoAmIResponse) {
	t.Helper()
	res, body := post(t, srv, procWhoAmI, `{}`, h)
	msg := &authv1.WhoAmIResponse{}
	if res.StatusCode == http.StatusOK {
		if err := protojson.Unmarshal([]byte(body), msg); err != nil {
			t.Fatalf("WhoAmI body %s: %v", body, err)
		}
	}
	return res, body, msg
}

// mustWork asserts the credential in h authenticates (as userID, unless "").
func mustWork(t *testing.T, srv *servertest.Server, h http.Header, userID string) {
	t.Helper()
	res, body, msg := whoAmI(t, srv, h)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("got HTTP %d %s, want the credential to work", res.StatusCode, body)
	}
	if userID != "" && msg.GetUser().GetId() != userID {
		t.Fatalf("got user %q, want %q", msg.GetUser().GetId(), userID)
	}
}

// rawDB opens the server's SQLite file directly, for rows no store method
// writes (such as an API key that expired).
func rawDB(t *testing.T, srv *servertest.Server) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+srv.DB+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func countRows(t *testing.T, srv *servertest.Server, table string) int {
	t.Helper()
	var n int
	if err := rawDB(t, srv).QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// noLeak asserts the server logged none of the secrets.
func noLeak(t *testing.T, srv *servertest.Server, secrets ...string) {
	t.Helper()
	logs := srv.Logs()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("got a credential (%.12s...) in the server log, want none logged", s)
		}
	}
}

// TestRefreshRotation: a refresh token is spent by use; presenting it again
// revokes the whole session (reuse detection) and is audited.
func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	anon := srv.Client(goclient.Connect, "")
	first := login(t, srv, servertest.AdminEmail, servertest.AdminPassword)

	res, err := anon.Auth.Refresh(ctx, connect.NewRequest(&authv1.RefreshRequest{RefreshToken: first.GetRefreshToken()}))
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	second := res.Msg
	if second.GetRefreshToken() == first.GetRefreshToken() || second.GetAccessToken() == "" {
		t.Fatalf("got refresh token %q again / access token %q, want a new pair", second.GetRefreshToken(), second.GetAccessToken())
	}
	mustWork(t, srv, bearer(second.GetAccessToken()), first.GetUser().GetId())

	// The old token is presented again: by a thief or by its owner after a
	// thief; either way the session must die.
	_, err = anon.Auth.Refresh(ctx, connect.NewRequest(&authv1.RefreshRequest{RefreshToken: first.GetRefreshToken()}))
	if codeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("reused refresh token: got %v, want unauthenticated", err)
	}

	t.Run("session_revoked", func(t *testing.T) {
		tests := []struct {
			name string
			call func() (*http.Response, string)
		}{
			{"new_access_token", func() (*http.Response, string) {
				return post(t, srv, procWhoAmI, `{}`, bearer(second.GetAccessToken()))
			}},
			{"old_access_token", func() (*http.Response, string) { return post(t, srv, procWhoAmI, `{}`, bearer(first.GetAccessToken())) }},
			{"new_refresh_token", func() (*http.Response, string) {
				return post(t, srv, procRefresh, refreshJSON(second.GetRefreshToken()), nil)
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res, body := tt.call()
				wantRefused(t, res, body, http.StatusUnauthorized, connect.CodeUnauthenticated, "")
			})
		}
	})

	t.Run("reuse_audited", func(t *testing.T) {
		events, err := srv.Store().ListAuditEvents(ctx, store.AuditFilter{}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var found []store.AuditEvent
		for _, e := range events {
			if strings.Contains(e.Detail, "refresh token reused") {
				found = append(found, e)
			}
			for _, tok := range []string{first.GetRefreshToken(), second.GetRefreshToken(), first.GetAccessToken()} {
				if strings.Contains(e.Detail, tok) {
					t.Errorf("got a token in audit event %s, want none", e.ID)
				}
			}
		}
		if len(found) == 0 {
			t.Fatalf("got no audit event mentioning the reuse among %d events, want one", len(events))
		}
		if e := found[0]; e.ActorID != first.GetUser().GetId() || e.Procedure != procRefresh {
			t.Errorf("got event actor %q procedure %q, want %q %q", e.ActorID, e.Procedure, first.GetUser().GetId(), procRefresh)
		}
	})
	noLeak(t, srv, first.GetRefreshToken(), second.GetRefreshToken(), first.GetAccessToken(), second.GetAccessToken())
}

// TestRefreshConcurrent: of simultaneous refreshes with one token, exactly
// one wins; the others are refused, never half-served.
func TestRefreshConcurrent(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	tok := login(t, srv, servertest.AdminEmail, servertest.AdminPassword).GetRefreshToken()
	const n = 8
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	c := srv.Client(goclient.Connect, "")
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = c.Auth.Refresh(context.Background(), connect.NewRequest(&authv1.RefreshRequest{RefreshToken: tok}))
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch codeOf(err) {
		case 0:
			wins++
		case connect.CodeUnauthenticated:
		default:
			t.Errorf("call %d: got %v, want success or unauthenticated", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("got %d successful refreshes, want exactly 1", wins)
	}
}

// TestCredentialsNotInterchangeable: each kind of credential works only
// where it belongs, and a misplaced one spends or writes nothing.
func TestCredentialsNotInterchangeable(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	pair := login(t, srv, servertest.AdminEmail, servertest.AdminPassword)
	key := newAPIKey(t, srv.Client(goclient.Connect, pair.GetAccessToken()), "ci", "notes:read", "notes:write").GetKey()
	cookie, _, _ := cookieLogin(t, srv, servertest.AdminEmail, servertest.AdminPassword, nil)
	before := countNotes(t, srv)

	unauthenticated := func(msg string) outcome { return outcome{connect.CodeUnauthenticated, msg} }
	tests := []struct {
		name      string
		procedure string
		body      string
		header    http.Header
		want      outcome // msg "" accepts any message
	}{
		{"refresh_token_as_bearer", procCreateNote, noteJSON, bearer(pair.GetRefreshToken()), unauthenticated(invalidCredentials)},
		{"refresh_token_as_api_key", procCreateNote, noteJSON, http.Header{"X-API-Key": {pair.GetRefreshToken()}}, unauthenticated(invalidCredentials)},
		{"refresh_token_as_cookie", procCreateNote, noteJSON, withCookie(pair.GetRefreshToken()), unauthenticated(invalidCredentials)},
		{"access_token_as_api_key", procCreateNote, noteJSON, http.Header{"X-API-Key": {pair.GetAccessToken()}}, unauthenticated(invalidCredentials)},
		{"access_token_as_cookie", procCreateNote, noteJSON, withCookie(pair.GetAccessToken()), unauthenticated(invalidCredentials)},
		{"api_key_as_cookie", procCreateNote, noteJSON, withCookie(key), unauthenticated(invalidCredentials)},
		{"cookie_as_bearer", procCreateNote, noteJSON, bearer(cookie), unauthenticated(invalidCredentials)},
		{"cookie_as_api_key", procCreateNote, noteJSON, http.Header{"X-API-Key": {cookie}}, unauthenticated(invalidCredentials)},
		{"cookie_to_refresh", procRefresh, refreshJSON(cookie), nil, unauthenticated("")},
		{"prefixed_cookie_to_refresh", procRefresh, refreshJSON("grt_" + cookie), nil, unauthenticated("")},
		{"api_key_to_refresh", procRefresh, refreshJSON(key), nil, unauthenticated("")},
		{"prefixed_api_key_to_refresh", procRefresh, refreshJSON("grt_" + key), nil, unauthenticated("")},
		// An access token is longer than refresh_token's max_len (256), so
		// validation refuses it before the handler: a refusal all the same.
		{"access_token_to_refresh", procRefresh, refreshJSON(pair.GetAccessToken()), nil, outcome{connect.CodeInvalidArgument, ""}},
	}
	statusOf := map[connect.Code]int{connect.CodeUnauthenticated: http.StatusUnauthorized, connect.CodeInvalidArgument: http.StatusBadRequest}
	t.Run("refused", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				res, body := post(t, srv, tt.procedure, tt.body, tt.header)
				wantRefused(t, res, body, statusOf[tt.want.code], tt.want.code, tt.want.msg)
				if strings.Contains(body, "Token") {
					t.Errorf("got %s, want nothing issued", body)
				}
				if tt.want.code != connect.CodeUnauthenticated {
					return
				}
				t.Run("challenge", func(t *testing.T) {
					if got := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
						t.Errorf("got WWW-Authenticate %q, want a Bearer challenge", got)
					}
				})
			})
		}
	})
	if got := countNotes(t, srv); got != before {
		t.Errorf("got %d notes, want %d", got, before)
	}
	// The misuse spent nothing: the real pair still works where it belongs.
	t.Run("pair_still_works", func(t *testing.T) {
		mustWork(t, srv, bearer(pair.GetAccessToken()), pair.GetUser().GetId())
		mustWork(t, srv, withCookie(cookie), pair.GetUser().GetId())
		res, body := post(t, srv, procRefresh, refreshJSON(pair.GetRefreshToken()), nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("refresh: got HTTP %d %s, want the unspent token to work", res.StatusCode, body)
		}
	})
}

// TestLogoutRevokesAtOnce: Logout ends the caller's session, access and
// refresh tokens alike, with no wait; other sessions live on.
func TestLogoutRevokesAtOnce(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	pair := login(t, srv, servertest.AdminEmail, servertest.AdminPassword)
	other := login(t, srv, servertest.AdminEmail, servertest.AdminPassword)
	c := srv.Client(goclient.Connect, pair.GetAccessToken())
	key := newAPIKey(t, c, "k", "notes:read").GetKey()
	mustWork(t, srv, bearer(pair.GetAccessToken()), "") // cached before logout
	if _, err := c.Auth.Logout(ctx, connect.NewRequest(&authv1.LogoutRequest{})); err != nil {
		t.Fatalf("logout: %v", err)
	}

	t.Run("access_token", func(t *testing.T) {
		t.Parallel()
		res, body := post(t, srv, procWhoAmI, `{}`, bearer(pair.GetAccessToken()))
		wantUnauthenticated(t, res, body, invalidCredentials)
	})
	t.Run("refresh_token", func(t *testing.T) {
		t.Parallel()
		res, body := post(t, srv, procRefresh, refreshJSON(pair.GetRefreshToken()), nil)
		wantRefused(t, res, body, http.StatusUnauthorized, connect.CodeUnauthenticated, "")
	})
	t.Run("other_session_lives", func(t *testing.T) {
		t.Parallel()
		mustWork(t, srv, bearer(other.GetAccessToken()), "")
	})
	t.Run("api_key_cannot_logout", func(t *testing.T) {
		t.Parallel()
		_, err := srv.Client(goclient.Connect, key).Auth.Logout(ctx, connect.NewRequest(&authv1.LogoutRequest{}))
		if codeOf(err) != connect.CodeFailedPrecondition {
			t.Errorf("got %v, want failed_precondition", err)
		}
		mustWork(t, srv, bearer(key), "")
	})
}

// TestChangePassword: refusals change nothing; success keeps the caller
// signed in and ends every other credential of the user.
func TestChangePassword(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	admin := srv.Client(goclient.Connect, srv.AdminToken())
	const newPassword = "an entirely new passphrase 2"

	// ChangePassword allows 5 calls a minute per user: the refusals use
	// their own user, so the success below has a budget.
	t.Run("refusals", func(t *testing.T) {
		r := addUser(t, admin, "refused@example.com", "member")
		tok := srv.Login(r.Email, r.Password)
		key := newAPIKey(t, srv.Client(goclient.Connect, tok), "k", "notes:read").GetKey()
		hashBefore, err := srv.Store().PasswordHash(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name        string
			cred        string
			current, pw string
			want        connect.Code
		}{
			{"wrong_current", tok, "not my password at all", newPassword, connect.CodePermissionDenied},
			{"common_new", tok, r.Password, "password123", connect.CodeInvalidArgument},
			{"short_new", tok, r.Password, "short", connect.CodeInvalidArgument},
			{"api_key", key, r.Password, newPassword, connect.CodePermissionDenied},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := srv.Client(goclient.Connect, tt.cred).Auth.ChangePassword(ctx, connect.NewRequest(&authv1.ChangePasswordRequest{
					CurrentPassword: tt.current, NewPassword: tt.pw,
				}))
				if got := codeOf(err); got != tt.want {
					t.Errorf("got %v, want %v", err, tt.want)
				}
			})
		}
		if got, _ := srv.Store().PasswordHash(ctx, r.ID); got != hashBefore {
			t.Error("got a new password hash after refused changes, want it unchanged")
		}
		srv.Login(r.Email, r.Password) // fails the test if the old password stopped working
		mustWork(t, srv, bearer(key), r.ID)
		mustWork(t, srv, bearer(tok), r.ID)
	})

	t.Run("success", func(t *testing.T) {
		u := addUser(t, admin, "changer@example.com", "member")
		mine := login(t, srv, u.Email, u.Password)
		other := login(t, srv, u.Email, u.Password)
		cookie, _, _ := cookieLogin(t, srv, u.Email, u.Password, nil)
		key := newAPIKey(t, srv.Client(goclient.Connect, mine.GetAccessToken()), "k", "notes:read").GetKey()
		for _, h := range []http.Header{bearer(mine.GetAccessToken()), bearer(other.GetAccessToken()), withCookie(cookie), bearer(key)} {
			mustWork(t, srv, h, u.ID) // and cache their state
		}
		if _, err := srv.Client(goclient.Connect, mine.GetAccessToken()).Auth.ChangePassword(ctx, connect.NewRequest(&authv1.ChangePasswordRequest{
			CurrentPassword: u.Password, NewPassword: newPassword,
		})); err != nil {
			t.Fatalf("change password: %v", err)
		}

		refused := []struct {
			name   string
			header http.Header
		}{
			{"other_session", bearer(other.GetAccessToken())},
			{"cookie_session", withCookie(cookie)},
			{"api_key", bearer(key)},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				res, body, _ := whoAmI(t, srv, tt.header)
				wantUnauthenticated(t, res, body, invalidCredentials)
			})
		}
		t.Run("other_session_refresh", func(t *testing.T) {
			res, body := post(t, srv, procRefresh, refreshJSON(other.GetRefreshToken()), nil)
			wantRefused(t, res, body, http.StatusUnauthorized, connect.CodeUnauthenticated, "")
		})
		t.Run("own_session", func(t *testing.T) {
			mustWork(t, srv, bearer(mine.GetAccessToken()), u.ID)
			res, body := post(t, srv, procRefresh, refreshJSON(mine.GetRefreshToken()), nil)
			if res.StatusCode != http.StatusOK {
				t.Errorf("refresh of the caller's session: got HTTP %d %s, want it kept", res.StatusCode, body)
			}
		})
		t.Run("old_password", func(t *testing.T) {
			res, body := post(t, srv, procLogin, loginJSON(u.Email, u.Password, false), nil)
			wantRefused(t, res, body, http.StatusUnauthorized, connect.CodeUnauthenticated, "")
		})
		t.Run("new_password", func(t *testing.T) {
			login(t, srv, u.Email, newPassword)
		})
		noLeak(t, srv, newPassword, u.Password)
	})
}

// TestDisableUser: a disabled user's every credential stops at once and
// their login cannot be told from a wrong password; an admin cannot lock
// itself out.
func TestDisableUser(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	adminPair := login(t, srv, servertest.AdminEmail, servertest.AdminPassword)
	adminID := adminPair.GetUser().GetId()
	admin := srv.Client(goclient.Connect, adminPair.GetAccessToken())
	m := addUser(t, admin, "member@example.com", "member")
	pair := login(t, srv, m.Email, m.Password)
	cookie, _, _ := cookieLogin(t, srv, m.Email, m.Password, nil)
	key := newAPIKey(t, srv.Client(goclient.Connect, pair.GetAccessToken()), "k", "notes:read", "notes:write").GetKey()
	creds := []struct {
		name   string
		header http.Header
	}{
		{"access_token", bearer(pair.GetAccessToken())},
		{"api_key_bearer", bearer(key)},
		{"api_key_header", http.Header{"X-API-Key": {key}}},
		{"cookie", withCookie(cookie)},
	}
	for _, c := range creds {
		mustWork(t, srv, c.header, m.ID) // and cache their state
	}
	wrongRes, wrongBody := post(t, srv, procLogin, loginJSON(m.Email, "not the password at all", false), nil)

	if _, err := admin.Admin.DisableUser(ctx, connect.NewRequest(&adminv1.DisableUserRequest{UserId: m.ID})); err != nil {
		t.Fatalf("disable: %v", err)
	}
	before := countNotes(t, srv)
	t.Run("credentials_stop", func(t *testing.T) {
		for _, c := range creds {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				res, body := post(t, srv, procCreateNote, noteJSON, c.header)
				wantUnauthenticated(t, res, body, invalidCredentials)
			})
		}
		t.Run("refresh_token", func(t *testing.T) {
			t.Parallel()
			res, body := post(t, srv, procRefresh, refreshJSON(pair.GetRefreshToken()), nil)
			wantRefused(t, res, body, http.StatusUnauthorized, connect.CodeUnauthenticated, "")
		})
	})
	if got := countNotes(t, srv); got != before {
		t.Errorf("got %d notes, want %d", got, before)
	}

	t.Run("login_like_wrong_password", func(t *testing.T) {
		for _, useCookie := range []bool{false, true} {
			res, body := post(t, srv, procLogin, loginJSON(m.Email, m.Password, useCookie), nil)
			if res.StatusCode != wrongRes.StatusCode || body != wrongBody {
				t.Errorf("cookie=%v: got HTTP %d %s, want HTTP %d %s as for a wrong password", useCookie, res.StatusCode, body, wrongRes.StatusCode, wrongBody)
			}
			if got, want := res.Header.Values("WWW-Authenticate"), wrongRes.Header.Values("WWW-Authenticate"); !slices.Equal(got, want) {
				t.Errorf("got WWW-Authenticate %q, want %q", got, want)
			}
			if c := sessionCookie(res); c != nil {
				t.Errorf("got a session cookie %v for a disabled user, want none", c)
			}
		}
	})

	t.Run("admin_cannot_disable_itself", func(t *testing.T) {
		_, err := admin.Admin.DisableUser(ctx, connect.NewRequest(&adminv1.DisableUserRequest{UserId: adminID}))
		if codeOf(err) != connect.CodeFailedPrecondition {
			t.Errorf("got %v, want failed_precondition", err)
		}
		mustWork(t, srv, bearer(adminPair.GetAccessToken()), adminID)
	})
	t.Run("admin_cannot_drop_own_admin_role", func(t *testing.T) {
		for _, roles := range [][]string{{"member"}, {"viewer"}, {"member", "viewer"}} {
			_, err := admin.Admin.SetUserRoles(ctx, connect.NewRequest(&adminv1.SetUserRolesRequest{UserId: adminID, Roles: roles}))
			if codeOf(err) != connect.CodeFailedPrecondition {
				t.Errorf("roles %v: got %v, want failed_precondition", roles, err)
			}
		}
		u, err := srv.Store().UserByID(ctx, adminID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(u.Roles, []string{"admin"}) || u.Disabled {
			t.Errorf("got admin roles %v disabled %v, want [admin] and enabled", u.Roles, u.Disabled)
		}
	})
}

// TestRoleChangeAppliesNextRequest: roles are read per request, not from
// the token, so a demotion bites the very next call of every credential.
func TestRoleChangeAppliesNextRequest(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	admin := srv.Client(goclient.Connect, srv.AdminToken())
	m := addUser(t, admin, "member@example.com", "member")
	tok := srv.Login(m.Email, m.Password)
	mc := srv.Client(goclient.Connect, tok)
	key := newAPIKey(t, mc, "writer", "notes:write").GetKey()
	for _, c := range []string{tok, key} {
		if _, err := srv.Client(goclient.Connect, c).Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "before"})); err != nil {
			t.Fatalf("create note as member: %v", err)
		}
	}
	if _, err := admin.Admin.SetUserRoles(ctx, connect.NewRequest(&adminv1.SetUserRolesRequest{UserId: m.ID, Roles: []string{"viewer"}})); err != nil {
		t.Fatalf("set roles: %v", err)
	}
	before := countNotes(t, srv)
	for _, tt := range []struct{ name, cred string }{{"access_token", tok}, {"api_key", key}} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := srv.Client(goclient.Connect, tt.cred).Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "after"}))
			if codeOf(err) != connect.CodePermissionDenied {
				t.Errorf("got %v, want permission_denied", err)
			}
		})
	}
	if got := countNotes(t, srv); got != before {
		t.Errorf("got %d notes, want %d", got, before)
	}
	res, err := mc.Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Msg.GetUser().GetRoles(); !slices.Equal(got, []string{"viewer"}) {
		t.Errorf("got roles %v, want [viewer]", got)
	}
}

// splitKey returns the id and secret of gk_<id>_<secret>.
func splitKey(t *testing.T, key string) (id, secret string) {
	t.Helper()
	rest, ok := strings.CutPrefix(key, auth.APIKeyPrefix)
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || id == "" || secret == "" {
		t.Fatalf("got key %q, want gk_<id>_<secret>", key)
	}
	return id, secret
}

// TestAPIKeys attacks API keys: scopes, minting, listing, revocation,
// probing and expiry.
func TestAPIKeys(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	admin := srv.Client(goclient.Connect, srv.AdminToken())
	m := addUser(t, admin, "member@example.com", "member")
	mTok := srv.Login(m.Email, m.Password)
	mc := srv.Client(goclient.Connect, mTok)
	created := newAPIKey(t, mc, "reader key", "notes:read")
	key := created.GetKey()
	id, secret := splitKey(t, key)

	t.Run("minted", func(t *testing.T) {
		meta := created.GetApiKey()
		if meta.GetId() != id || meta.GetLast4() != key[len(key)-4:] || !slices.Equal(meta.GetScopes(), []string{"notes:read"}) {
			t.Errorf("got metadata %v, want id %s, last4 %s, scopes [notes:read]", meta, id, key[len(key)-4:])
		}
		if len(secret) < 40 {
			t.Errorf("got a secret of %d characters, want at least 40 (256 bits)", len(secret))
		}
	})

	t.Run("accepted", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			header http.Header
		}{
			{"authorization_bearer", bearer(key)},
			{"x_api_key", http.Header{"X-API-Key": {key}}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				res, body, msg := whoAmI(t, srv, tt.header)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("got HTTP %d %s, want 200", res.StatusCode, body)
				}
				if msg.GetAuthMethod() != authv1.AuthMethod_AUTH_METHOD_API_KEY || !slices.Equal(msg.GetScopes(), []string{"notes:read"}) || msg.GetUser().GetId() != m.ID {
					t.Errorf("got %v, want the member, AUTH_METHOD_API_KEY and [notes:read]", msg)
				}
			})
		}
	})

	notes := countNotes(t, srv)
	t.Run("scope_enforced", func(t *testing.T) {
		for _, h := range []http.Header{bearer(key), {"X-API-Key": {key}}} {
			res, body := post(t, srv, procCreateNote, noteJSON, h)
			wantRefused(t, res, body, http.StatusForbidden, connect.CodePermissionDenied, "")
		}
		if got := countNotes(t, srv); got != notes {
			t.Errorf("got %d notes, want %d", got, notes)
		}
	})

	t.Run("viewer_cannot_mint_write", func(t *testing.T) {
		v := addUser(t, admin, "viewer@example.com", "viewer")
		vc := srv.Client(goclient.Connect, srv.Login(v.Email, v.Password))
		for _, scopes := range [][]string{{"notes:write"}, {"notes:read", "notes:write"}, {"admin"}} {
			_, err := vc.Auth.CreateAPIKey(ctx, connect.NewRequest(&authv1.CreateAPIKeyRequest{Name: "escalate", Scopes: scopes, Ttl: durationpb.New(time.Hour)}))
			if codeOf(err) != connect.CodePermissionDenied {
				t.Errorf("scopes %v: got %v, want permission_denied", scopes, err)
			}
		}
		if keys, err := srv.Store().ListAPIKeys(ctx, v.ID, ""); err != nil || len(keys) != 0 {
			t.Errorf("got viewer keys %v (%v), want none stored", keys, err)
		}
	})

	t.Run("key_cannot_mint_wider_key", func(t *testing.T) {
		kc := srv.Client(goclient.Connect, key)
		for _, scopes := range [][]string{{"notes:write"}, {"notes:read", "notes:write"}, {"admin"}} {
			_, err := kc.Auth.CreateAPIKey(ctx, connect.NewRequest(&authv1.CreateAPIKeyRequest{Name: "escalate", Scopes: scopes, Ttl: durationpb.New(time.Hour)}))
			if codeOf(err) != connect.CodePermissionDenied {
				t.Errorf("scopes %v: got %v, want permission_denied", scopes, err)
			}
		}
		if keys, err := srv.Store().ListAPIKeys(ctx, m.ID, ""); err != nil || len(keys) != 1 {
			t.Errorf("got %d member keys (%v), want only the first", len(keys), err)
		}
	})

	t.Run("list_hides_secret", func(t *testing.T) {
		res, body := post(t, srv, procListAPIKeys, `{}`, bearer(mTok))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("got HTTP %d %s", res.StatusCode, body)
		}
		list := &authv1.ListAPIKeysResponse{}
		if err := protojson.Unmarshal([]byte(body), list); err != nil {
			t.Fatal(err)
		}
		if len(list.GetApiKeys()) != 1 {
			t.Fatalf("got %d keys, want 1", len(list.GetApiKeys()))
		}
		k := list.GetApiKeys()[0]
		if k.GetId() != id || k.GetName() != "reader key" || !slices.Equal(k.GetScopes(), []string{"notes:read"}) || k.GetLast4() != key[len(key)-4:] {
			t.Errorf("got %v, want id %s, name, scopes and last4 %s", k, id, key[len(key)-4:])
		}
		// Any 8 consecutive characters of the secret beyond last4 would be a leak.
		for i := 0; i+8 <= len(secret); i++ {
			if strings.Contains(body, secret[i:i+8]) {
				t.Fatalf("got part of the secret (%q) in ListAPIKeys %s", secret[i:i+8], body)
			}
		}
	})

	t.Run("other_users_key_not_found", func(t *testing.T) {
		o := addUser(t, admin, "other@example.com", "member")
		oc := srv.Client(goclient.Connect, srv.Login(o.Email, o.Password))
		_, errOther := oc.Auth.RevokeAPIKey(ctx, connect.NewRequest(&authv1.RevokeAPIKeyRequest{Id: id}))
		_, errMissing := oc.Auth.RevokeAPIKey(ctx, connect.NewRequest(&authv1.RevokeAPIKeyRequest{Id: store.NewID()}))
		if codeOf(errOther) != connect.CodeNotFound || outcomeOf(errOther) != outcomeOf(errMissing) {
			t.Errorf("got %v for another user's key and %v for a missing one, want the same not_found", errOther, errMissing)
		}
		mustWork(t, srv, bearer(key), m.ID)
	})

	t.Run("probes_look_alike", func(t *testing.T) {
		wrongSecret := auth.APIKeyPrefix + id + "_" + strings.Repeat("A", len(secret))
		unknownID := auth.APIKeyPrefix + store.NewID() + "_" + secret
		for _, header := range []string{"Authorization", "X-API-Key"} {
			t.Run(header, func(t *testing.T) {
				h := func(k string) http.Header {
					if header == "Authorization" {
						return bearer(k)
					}
					return http.Header{header: {k}}
				}
				resA, bodyA := post(t, srv, procWhoAmI, `{}`, h(wrongSecret))
				resB, bodyB := post(t, srv, procWhoAmI, `{}`, h(unknownID))
				wantUnauthenticated(t, resA, bodyA, invalidCredentials)
				if resA.StatusCode != resB.StatusCode || bodyA != bodyB ||
					resA.Header.Get("WWW-Authenticate") != resB.Header.Get("WWW-Authenticate") {
					t.Errorf("got %d %s %q and %d %s %q, want identical answers", resA.StatusCode, bodyA, resA.Header.Get("WWW-Authenticate"),
						resB.StatusCode, bodyB, resB.Header.Get("WWW-Authenticate"))
				}
			})
		}
	})

	t.Run("query_parameters_ignored", func(t *testing.T) {
		for _, q := range []string{"api_key", "key", "access_token", "X-API-Key"} {
			t.Run(q, func(t *testing.T) {
				res, body := post(t, srv, procWhoAmI+"?"+url.Values{q: {key}}.Encode(), `{}`, nil)
				wantUnauthenticated(t, res, body, "authentication required")
			})
		}
	})

	t.Run("revoked_at_once", func(t *testing.T) {
		mustWork(t, srv, bearer(key), m.ID)
		if _, err := mc.Auth.RevokeAPIKey(ctx, connect.NewRequest(&authv1.RevokeAPIKeyRequest{Id: id})); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		res, body := post(t, srv, procWhoAmI, `{}`, http.Header{"X-API-Key": {key}})
		wantUnauthenticated(t, res, body, invalidCredentials)
	})

	t.Run("expired", func(t *testing.T) {
		k := newAPIKey(t, mc, "short lived", "notes:read")
		mustWork(t, srv, bearer(k.GetKey()), m.ID) // its state is now cached
		past := time.Now().Add(-time.Minute).UnixMicro()
		if _, err := rawDB(t, srv).Exec(`UPDATE api_keys SET expire_time = ? WHERE id = ?`, past, k.GetApiKey().GetId()); err != nil {
			t.Fatal(err)
		}
		// Another replica's change is seen once the 1 s state cache lapses.
		var (
			res  *http.Response
			body string
		)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			res, body = post(t, srv, procWhoAmI, `{}`, bearer(k.GetKey()))
			if res.StatusCode != http.StatusOK || time.Now().After(deadline) {
				break
			}
		}
		wantUnauthenticated(t, res, body, "credentials expired")
	})
	noLeak(t, srv, secret)
}

// TestAPIKeyLineage attacks the key-minting chain: a leaked short-lived key
// mints a long-lived one, then the leaked key is revoked.
func TestAPIKeyLineage(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	m := srv.CreateUser("lineage@example.com", "member")
	mc := srv.Client(goclient.Connect, m.Token)
	mintWith := func(t *testing.T, c *goclient.Client, ttl time.Duration) *authv1.CreateAPIKeyResponse {
		t.Helper()
		res, err := c.Auth.CreateAPIKey(ctx, connect.NewRequest(&authv1.CreateAPIKeyRequest{
			Name: "minted", Scopes: []string{"notes:read"}, Ttl: durationpb.New(ttl),
		}))
		if err != nil {
			t.Fatalf("CreateAPIKey: %v", err)
		}
		return res.Msg
	}
	leaked := mintWith(t, mc, time.Minute)
	child := mintWith(t, srv.Client(goclient.Connect, leaked.GetKey()), 365*24*time.Hour)
	grandchild := mintWith(t, srv.Client(goclient.Connect, child.GetKey()), 365*24*time.Hour)

	leakedExpire := leaked.GetApiKey().GetExpireTime().AsTime()
	for name, k := range map[string]*authv1.CreateAPIKeyResponse{"child": child, "grandchild": grandchild} {
		if got := k.GetApiKey().GetExpireTime().AsTime(); got.After(leakedExpire) {
			t.Errorf("%s expires at %v, after the key that minted it (%v)", name, got, leakedExpire)
		}
	}
	if child.GetApiKey().GetParentId() != leaked.GetApiKey().GetId() || grandchild.GetApiKey().GetParentId() != child.GetApiKey().GetId() {
		t.Errorf("got parents %q, %q, want the minting keys", child.GetApiKey().GetParentId(), grandchild.GetApiKey().GetParentId())
	}
	// The stored expiry is the clamped one, not the year asked for.
	var stored int64
	if err := rawDB(t, srv).QueryRow(`SELECT expire_time FROM api_keys WHERE id = ?`, grandchild.GetApiKey().GetId()).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if got := time.UnixMicro(stored); got.After(leakedExpire) {
		t.Errorf("stored grandchild expiry %v is after the leaked key's %v", got, leakedExpire)
	}
	// A sibling minted by the user's session is not part of the tree.
	sibling := mintWith(t, mc, time.Hour)

	mustWork(t, srv, bearer(grandchild.GetKey()), m.ID) // cached as valid
	if _, err := mc.Auth.RevokeAPIKey(ctx, connect.NewRequest(&authv1.RevokeAPIKeyRequest{Id: leaked.GetApiKey().GetId()})); err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]string{"leaked": leaked.GetKey(), "child": child.GetKey(), "grandchild": grandchild.GetKey()} {
		res, body := post(t, srv, procWhoAmI, `{}`, bearer(k))
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s after revoking the leaked key: got HTTP %d %s, want 401", name, res.StatusCode, body)
		}
	}
	mustWork(t, srv, bearer(sibling.GetKey()), m.ID)
	// A revoked key mints nothing.
	keys := countRows(t, srv, "api_keys")
	_, err := srv.Client(goclient.Connect, child.GetKey()).Auth.CreateAPIKey(ctx, connect.NewRequest(&authv1.CreateAPIKeyRequest{
		Name: "after", Scopes: []string{"notes:read"}, Ttl: durationpb.New(time.Hour),
	}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("minting with a revoked key: got %v, want unauthenticated", err)
	}
	if n := countRows(t, srv, "api_keys"); n != keys {
		t.Errorf("got %d keys, want %d", n, keys)
	}

	// A leaked read-only key cannot touch its owner's other keys: they are
	// invisible to it, exactly like missing ones.
	writer := mintWith(t, mc, time.Hour) // notes:read is all mintWith asks; the point is a sibling
	reader := mintWith(t, mc, time.Hour)
	rc := srv.Client(goclient.Connect, reader.GetKey())
	_, errOther := rc.Auth.RevokeAPIKey(ctx, connect.NewRequest(&authv1.RevokeAPIKeyRequest{Id: writer.GetApiKey().GetId()}))
	_, errMissing := rc.Auth.RevokeAPIKey(ctx, connect.NewRequest(&authv1.RevokeAPIKeyRequest{Id: store.NewID()}))
	if codeOf(errOther) != connect.CodeNotFound || outcomeOf(errOther) != outcomeOf(errMissing) {
		t.Errorf("revoking a sibling with a key: got %v (missing key: %v), want the same not_found", errOther, errMissing)
	}
	mustWork(t, srv, bearer(writer.GetKey()), m.ID)
	list, err := rc.Auth.ListAPIKeys(ctx, connect.NewRequest(&authv1.ListAPIKeysRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if got := list.Msg.GetApiKeys(); len(got) != 1 || got[0].GetId() != reader.GetApiKey().GetId() {
		t.Errorf("ListAPIKeys with a key: got %v, want only that key", got)
	}
	// It may end itself.
	if _, err := rc.Auth.RevokeAPIKey(ctx, connect.NewRequest(&authv1.RevokeAPIKeyRequest{Id: reader.GetApiKey().GetId()})); err != nil {
		t.Errorf("a key revoking itself: %v", err)
	}
}

// TestOneCredentialOnly: two credentials at once are refused, never merged,
// whatever their kinds and owners.
func TestOneCredentialOnly(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	adminTok := srv.AdminToken()
	admin := srv.Client(goclient.Connect, adminTok)
	m := addUser(t, admin, "member@example.com", "member")
	o := addUser(t, admin, "other@example.com", "member")
	mTok := srv.Login(m.Email, m.Password)
	mKey := newAPIKey(t, srv.Client(goclient.Connect, mTok), "k", "notes:read", "notes:write").GetKey()
	mCookie, _, _ := cookieLogin(t, srv, m.Email, m.Password, nil)
	oCookie, _, _ := cookieLogin(t, srv, o.Email, o.Password, nil)
	for _, h := range []http.Header{bearer(mTok), bearer(mKey), withCookie(mCookie), withCookie(oCookie)} {
		mustWork(t, srv, h, "") // each alone is good
	}
	cookie := func(v string) string { return auth.CookieName + "=" + v }

	tests := []struct {
		name   string
		header http.Header
	}{
		{"bearer_and_x_api_key", http.Header{"Authorization": {"Bearer " + mTok}, "X-API-Key": {mKey}}},
		{"same_key_twice", http.Header{"Authorization": {"Bearer " + mKey}, "X-API-Key": {mKey}}},
		{"bearer_and_cookie_of_another_user", http.Header{"Authorization": {"Bearer " + mTok}, "Cookie": {cookie(oCookie)}, "Sec-Fetch-Site": {"same-origin"}}},
		{"api_key_and_cookie", http.Header{"X-API-Key": {mKey}, "Cookie": {cookie(mCookie)}, "Sec-Fetch-Site": {"same-origin"}}},
		{"two_cookies_one_line", http.Header{"Cookie": {cookie(mCookie) + "; " + cookie(oCookie)}, "Sec-Fetch-Site": {"same-origin"}}},
		{"two_cookie_lines", http.Header{"Cookie": {cookie(mCookie), cookie(oCookie)}, "Sec-Fetch-Site": {"same-origin"}}},
		{"same_cookie_twice", http.Header{"Cookie": {cookie(mCookie) + "; " + cookie(mCookie)}, "Sec-Fetch-Site": {"same-origin"}}},
		{"two_authorization_headers", http.Header{"Authorization": {"Bearer " + mTok, "Bearer " + adminTok}}},
		{"two_x_api_keys", http.Header{"X-API-Key": {mKey, mKey}}},
	}
	before := countNotes(t, srv)
	t.Run("refused", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				res, body := post(t, srv, procCreateNote, noteJSON, tt.header)
				wantUnauthenticated(t, res, body, moreThanOneCred)
			})
		}
	})
	if got := countNotes(t, srv); got != before {
		t.Errorf("got %d notes after the attacks, want %d", got, before)
	}
}

// TestCookieSession attacks the browser session: cookie attributes,
// fixation, CSRF, method smuggling and logout.
func TestCookieSession(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-cors-origins="+allowedOrigin)
	admin := srv.Client(goclient.Connect, srv.AdminToken())
	m := addUser(t, admin, "member@example.com", "member")
	first, res, body := cookieLogin(t, srv, m.Email, m.Password, nil)

	t.Run("no_tokens_in_body", func(t *testing.T) {
		msg := &authv1.LoginResponse{}
		if err := protojson.Unmarshal([]byte(body), msg); err != nil {
			t.Fatal(err)
		}
		if msg.GetAccessToken() != "" || msg.GetRefreshToken() != "" || strings.Contains(body, first) {
			t.Errorf("got body %s, want no token and no cookie value in it", body)
		}
		if msg.GetUser().GetId() != m.ID {
			t.Errorf("got user %v, want %s", msg.GetUser(), m.ID)
		}
	})
	t.Run("cookie_attributes", func(t *testing.T) {
		c := sessionCookie(res)
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("got cookie %q, want Secure, HttpOnly, SameSite=Strict, Path=/ and no Domain", c.Raw)
		}
		if c.MaxAge <= 0 && c.Expires.IsZero() {
			t.Errorf("got cookie %q without a lifetime, want one bounded by the session", c.Raw)
		}
	})
	t.Run("no_fixation", func(t *testing.T) {
		const planted = "attacker-chosen-session-value-0123456789abcdef"
		second, _, _ := cookieLogin(t, srv, m.Email, m.Password, withCookie(planted))
		if second == first || second == planted {
			t.Errorf("got cookie %q, want a fresh value (first %q, planted %q)", second, first, planted)
		}
		mustWork(t, srv, withCookie(first), m.ID)
		mustWork(t, srv, withCookie(second), m.ID)
		res, body, _ := whoAmI(t, srv, withCookie(planted))
		wantUnauthenticated(t, res, body, invalidCredentials)
	})
	t.Run("who_am_i", func(t *testing.T) {
		h := withCookie(first)
		h.Set("Content-Type", "application/json")
		res, body, msg := whoAmI(t, srv, h)
		if res.StatusCode != http.StatusOK || msg.GetAuthMethod() != authv1.AuthMethod_AUTH_METHOD_SESSION_COOKIE || len(msg.GetScopes()) != 0 {
			t.Errorf("got HTTP %d %s, want AUTH_METHOD_SESSION_COOKIE without scopes", res.StatusCode, body)
		}
	})

	t.Run("csrf_refused", func(t *testing.T) {
		cookie := auth.CookieName + "=" + first
		tests := []struct {
			name        string
			contentType string
			fetchSite   string
			origin      string
		}{
			{"text_plain", "text/plain", "", ""},
			{"text_plain_same_origin", "text/plain;charset=UTF-8", "same-origin", ""},
			{"form_urlencoded", "application/x-www-form-urlencoded", "", ""},
			{"multipart_form", "multipart/form-data; boundary=x", "", ""},
			{"cross_site_evil_origin", "application/json", "cross-site", evilOrigin},
			{"cross_site_no_origin", "application/json", "cross-site", ""},
			{"same_site_unlisted_origin", "application/json", "same-site", "https://other.example.com"},
			{"lookalike_origin", "application/json", "cross-site", allowedOrigin + ".evil.example"},
			{"no_fetch_metadata_evil_origin", "application/json", "", evilOrigin},
			{"no_fetch_metadata_null_origin", "application/json", "", "null"},
		}
		before := countNotes(t, srv)
		t.Run("table", func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					h := http.Header{"Cookie": {cookie}, "Content-Type": {tt.contentType}}
					if tt.fetchSite != "" {
						h.Set("Sec-Fetch-Site", tt.fetchSite)
					}
					if tt.origin != "" {
						h.Set("Origin", tt.origin)
					}
					res, body := send(t, srv, http.MethodPost, procCreateNote, noteJSON, h)
					if res.StatusCode == http.StatusUnsupportedMediaType && !strings.HasPrefix(tt.contentType, "application/json") {
						return // connect-go speaks no form or text: refused before any interceptor runs
					}
					wantRefused(t, res, body, http.StatusForbidden, connect.CodePermissionDenied, "")
				})
			}
		})
		if got := countNotes(t, srv); got != before {
			t.Errorf("got %d notes after the attacks, want %d", got, before)
		}
	})

	t.Run("allowed_origin", func(t *testing.T) {
		before := countNotes(t, srv)
		h := http.Header{"Cookie": {auth.CookieName + "=" + first}, "Content-Type": {"application/json"},
			"Sec-Fetch-Site": {"cross-site"}, "Origin": {allowedOrigin}}
		res, body := send(t, srv, http.MethodPost, procCreateNote, `{"title":"from the app"}`, h)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("got HTTP %d %s, want the allowed origin served", res.StatusCode, body)
		}
		if got := countNotes(t, srv); got != before+1 {
			t.Errorf("got %d notes, want %d", got, before+1)
		}
	})

	t.Run("get_cannot_write", func(t *testing.T) {
		before := countNotes(t, srv)
		q := url.Values{"connect": {"v1"}, "encoding": {"json"}, "message": {noteJSON}}
		res, body := send(t, srv, http.MethodGet, procCreateNote+"?"+q.Encode(), "", withCookie(first))
		if res.StatusCode == http.StatusOK {
			t.Errorf("got HTTP 200 %s, want GET refused", body)
		}
		if got := countNotes(t, srv); got != before {
			t.Errorf("got %d notes, want %d", got, before)
		}
	})

	t.Run("logout", func(t *testing.T) {
		other, _, _ := cookieLogin(t, srv, m.Email, m.Password, nil)
		res, body := post(t, srv, procLogout, `{}`, withCookie(first))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("logout: got HTTP %d %s", res.StatusCode, body)
		}
		c := sessionCookie(res)
		if c == nil || c.Value != "" || (c.MaxAge >= 0 && (c.Expires.IsZero() || c.Expires.After(time.Now()))) {
			t.Errorf("got Set-Cookie %q, want the session cookie deleted", res.Header.Values("Set-Cookie"))
		}
		res, body, _ = whoAmI(t, srv, withCookie(first))
		wantUnauthenticated(t, res, body, invalidCredentials)
		mustWork(t, srv, withCookie(other), m.ID) // only the caller's session ends
	})
	noLeak(t, srv, first)
}

// TestLoginLockout: repeated failures lock an account (known or not) and a
// client address; a locked login is refused even with the right password,
// before anything is written.
func TestLoginLockout(t *testing.T) {
	t.Parallel()
	type answer struct {
		status int
		code   string
	}
	attempt := func(t *testing.T, srv *servertest.Server, email, pw string) (answer, *http.Response, string) {
		t.Helper()
		res, body := post(t, srv, procLogin, loginJSON(email, pw, false), nil)
		return answer{res.StatusCode, errorOf(body).Code}, res, body
	}
	fail := func(t *testing.T, srv *servertest.Server, email string, n int) {
		t.Helper()
		for i := range n {
			if got, _, body := attempt(t, srv, email, fmt.Sprintf("wrong password %d", i)); got.status != http.StatusUnauthorized {
				t.Fatalf("failure %d for %s: got %v %s, want 401", i, email, got, body)
			}
		}
	}
	wantLocked := func(t *testing.T, srv *servertest.Server, email, pw string) answer {
		t.Helper()
		sessions := countRows(t, srv, "sessions")
		got, res, body := attempt(t, srv, email, pw)
		want := answer{http.StatusTooManyRequests, connect.CodeResourceExhausted.String()}
		if got != want {
			t.Errorf("%s: got %v %s, want %v", email, got, body, want)
		}
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("got Retry-After %q, want at least 1 s", res.Header.Get("Retry-After"))
		}
		if strings.Contains(body, "Token") || sessionCookie(res) != nil {
			t.Errorf("got %s, want no credential issued", body)
		}
		if n := countRows(t, srv, "sessions"); n != sessions {
			t.Errorf("got %d sessions, want %d: a locked login must write nothing", n, sessions)
		}
		return got
	}

	t.Run("account", func(t *testing.T) {
		t.Parallel()
		srv := servertest.Start(t, "-ip-lockout-failures=1000")
		fail(t, srv, servertest.AdminEmail, 5)
		known := wantLocked(t, srv, servertest.AdminEmail, servertest.AdminPassword)
		fail(t, srv, "nobody@example.com", 5)
		unknown := wantLocked(t, srv, "nobody@example.com", "any password at all")
		if known != unknown {
			t.Errorf("got %v for a known account and %v for an unknown one, want the same", known, unknown)
		}
	})

	t.Run("success_elsewhere_does_not_reset", func(t *testing.T) {
		t.Parallel()
		srv := servertest.Start(t, "-ip-lockout-failures=1000")
		victim := addUser(t, srv.Client(goclient.Connect, srv.AdminToken()), "victim@example.com", "member")
		fail(t, srv, victim.Email, 4)
		srv.AdminToken() // a success on another account
		fail(t, srv, victim.Email, 1)
		srv.AdminToken()
		wantLocked(t, srv, victim.Email, victim.Password)
		srv.AdminToken() // the other account is not locked with it
	})

	t.Run("client_address", func(t *testing.T) {
		t.Parallel()
		srv := servertest.Start(t, "-ip-lockout-failures=3")
		for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			fail(t, srv, email, 1)
		}
		wantLocked(t, srv, servertest.AdminEmail, servertest.AdminPassword)
	})

	// The client addresses below come from X-Forwarded-For, believed from
	// the loopback proxy the test declares.
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	const attacker, owner = "203.0.113.66", "198.51.100.7"
	loginFrom := func(t *testing.T, srv *servertest.Server, email, pw, ip string) (int, string) {
		t.Helper()
		res, body := post(t, srv, procLogin, loginJSON(email, pw, false), from(ip))
		return res.StatusCode, body
	}

	t.Run("one_address_cannot_lock_the_owner_out", func(t *testing.T) {
		t.Parallel()
		srv := servertest.Start(t, "-trusted-proxies=127.0.0.1")
		victim := addUser(t, srv.Client(goclient.Connect, srv.AdminToken()), "owner@example.com", "member")
		// An attacker guesses from one address for as long as it is let.
		for i := range 8 {
			status, body := loginFrom(t, srv, victim.Email, fmt.Sprintf("guess number %d", i), attacker)
			if want := map[bool]int{true: http.StatusUnauthorized, false: http.StatusTooManyRequests}[i < 5]; status != want {
				t.Fatalf("guess %d: got HTTP %d %s, want %d", i, status, body, want)
			}
		}
		// Even the right password is refused at the attacker's address...
		if status, body := loginFrom(t, srv, victim.Email, victim.Password, attacker); status != http.StatusTooManyRequests {
			t.Errorf("right password from the attacker's address: got HTTP %d %s, want 429", status, body)
		}
		// ...while the owner, elsewhere, logs in.
		if status, body := loginFrom(t, srv, victim.Email, victim.Password, owner); status != http.StatusOK {
			t.Errorf("owner from another address: got HTTP %d %s, want 200", status, body)
		}
	})

	t.Run("distributed_guessing_is_bounded", func(t *testing.T) {
		t.Parallel()
		srv := servertest.Start(t, "-trusted-proxies=127.0.0.1", "-account-lockout-failures=10")
		admin := srv.Client(goclient.Connect, srv.AdminToken())
		victim := addUser(t, admin, "target@example.com", "member")
		// The owner logged in from home once, before the attack.
		if status, body := loginFrom(t, srv, victim.Email, victim.Password, owner); status != http.StatusOK {
			t.Fatalf("owner: got HTTP %d %s", status, body)
		}
		// Three addresses, four guesses each: no address reaches its own
		// limit of five, but the account-wide ceiling of ten is passed.
		guesses := 0
		for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
			for i := range 4 {
				status, _ := loginFrom(t, srv, victim.Email, fmt.Sprintf("guess %s %d", ip, i), ip)
				if status == http.StatusUnauthorized {
					guesses++
				}
			}
		}
		if guesses != 10 {
			t.Errorf("got %d guesses checked, want the run stopped at the ceiling of 10", guesses)
		}
		// A new address is refused, even with the right password, and
		// nothing is written...
		sessions := countRows(t, srv, "sessions")
		if status, body := loginFrom(t, srv, victim.Email, victim.Password, "192.0.2.200"); status != http.StatusTooManyRequests {
			t.Errorf("right password from a new address: got HTTP %d %s, want 429", status, body)
		}
		if n := countRows(t, srv, "sessions"); n != sessions {
			t.Errorf("got %d sessions, want %d", n, sessions)
		}
		// ...but the owner's own network still gets in.
		if status, body := loginFrom(t, srv, victim.Email, victim.Password, owner); status != http.StatusOK {
			t.Errorf("owner's network during the lockout: got HTTP %d %s, want 200", status, body)
		}
		// An admin lifts the lockout, and the call is audited.
		if _, err := admin.Admin.UnlockUser(context.Background(), connect.NewRequest(&adminv1.UnlockUserRequest{UserId: victim.ID})); err != nil {
			t.Fatal(err)
		}
		if status, body := loginFrom(t, srv, victim.Email, victim.Password, "192.0.2.200"); status != http.StatusOK {
			t.Errorf("after UnlockUser: got HTTP %d %s, want 200", status, body)
		}
		var audited int
		if err := rawDB(t, srv).QueryRow(`SELECT COUNT(*) FROM audit_events WHERE procedure = ? AND code = 'ok'`,
			adminv1connect.AdminServiceUnlockUserProcedure).Scan(&audited); err != nil || audited != 1 {
			t.Errorf("got %d UnlockUser audit events (%v), want 1", audited, err)
		}
	})

	t.Run("unlock_unknown_user", func(t *testing.T) {
		t.Parallel()
		srv := servertest.Start(t)
		_, err := srv.Client(goclient.Connect, srv.AdminToken()).Admin.UnlockUser(context.Background(),
			connect.NewRequest(&adminv1.UnlockUserRequest{UserId: "aaaaaaaaaaaaaaaaaaaaaaaaaa"}))
		if connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("got %v, want not_found", err)
		}
	})

	t.Run("change_password_guesses_count", func(t *testing.T) {
		t.Parallel()
		srv := servertest.Start(t, "-trusted-proxies=127.0.0.1")
		u := srv.CreateUser("stolen-session@example.com", "member")
		c := srv.Client(goclient.Connect, u.Token)
		// A thief with the session guesses the current password.
		for i := range 5 {
			_, err := c.Auth.ChangePassword(context.Background(), connect.NewRequest(&authv1.ChangePasswordRequest{
				CurrentPassword: fmt.Sprintf("guess number %d", i), NewPassword: "a brand new passphrase 9",
			}))
			if connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Fatalf("guess %d: got %v, want permission_denied", i, err)
			}
		}
		// The guesses counted like failed logins: this address is locked out
		// of the account, for Login as for ChangePassword.
		wantLocked(t, srv, u.Email, u.Password)
		if status, body := loginFrom(t, srv, u.Email, u.Password, owner); status != http.StatusOK {
			t.Errorf("the password must be unchanged: login elsewhere got HTTP %d %s", status, body)
		}
	})
}

// jwk is one key of a JSON Web Key Set, with every member it holds.
type jwk map[string]string

func fetchJWKS(t *testing.T, srv *servertest.Server) map[string]jwk {
	t.Helper()
	res, err := srv.HTTPClient().Get(srv.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("got HTTP %d %q, want 200 application/jwk-set+json", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	byKid := map[string]jwk{}
	for _, k := range set.Keys {
		if k["kty"] != "OKP" || k["crv"] != "Ed25519" {
			t.Errorf("got key %v, want kty OKP and crv Ed25519", k)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("got private member %q in the published key %s", private, k["kid"])
			}
		}
		byKid[k["kid"]] = k
	}
	return byKid
}

// verifiedKid returns the kid of tok after checking its signature against
// the published key of that kid.
func verifiedKid(t *testing.T, keys map[string]jwk, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("got token %q, want a JWS", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var header struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &header); err != nil {
		t.Fatal(err)
	}
	k, ok := keys[header.Kid]
	if !ok {
		t.Fatalf("got kid %q, want one of the published %v", header.Kid, slices.Collect(maps.Keys(keys)))
	}
	pub, err := base64.RawURLEncoding.DecodeString(k["x"])
	if err != nil || len(pub) != ed25519.PublicKeySize {
		t.Fatalf("got x %q, want a base64url Ed25519 public key", k["x"])
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		t.Errorf("token signed by kid %s does not verify with the published key", header.Kid)
	}
	return header.Kid
}

// TestJWKS: the published keys verify the tokens the server issues, across
// a signing key rotation that only an admin may make.
func TestJWKS(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	before := srv.AdminToken()
	keys := fetchJWKS(t, srv)
	if len(keys) != 1 {
		t.Fatalf("got %d published keys, want 1", len(keys))
	}
	oldKid := verifiedKid(t, keys, before)

	member := srv.CreateUser("member@example.com", "member")
	_, err := srv.Client(goclient.Connect, member.Token).Admin.RotateSigningKey(ctx, connect.NewRequest(&adminv1.RotateSigningKeyRequest{}))
	if codeOf(err) != connect.CodePermissionDenied {
		t.Errorf("member rotation: got %v, want permission_denied", err)
	}
	if got := fetchJWKS(t, srv); len(got) != 1 {
		t.Errorf("got %d keys after a refused rotation, want 1", len(got))
	}

	res, err := srv.Client(goclient.Connect, before).Admin.RotateSigningKey(ctx, connect.NewRequest(&adminv1.RotateSigningKeyRequest{}))
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	newKid := res.Msg.GetKeyId()
	if newKid == "" || newKid == oldKid {
		t.Fatalf("got new kid %q, want one other than %q", newKid, oldKid)
	}
	keys = fetchJWKS(t, srv)
	if _, ok := keys[oldKid]; !ok || len(keys) != 2 {
		t.Errorf("got kids %v, want %s and %s", slices.Collect(maps.Keys(keys)), oldKid, newKid)
	}
	after := srv.AdminToken()
	if got := verifiedKid(t, keys, after); got != newKid {
		t.Errorf("got kid %q on a new token, want %q", got, newKid)
	}
	mustWork(t, srv, bearer(before), "") // tokens of the old key live until they expire
	mustWork(t, srv, bearer(after), "")
	mustWork(t, srv, bearer(member.Token), member.ID)
}

// TestWeakPasswordsRefused: passwords from breach corpora and passwords
// built from the email are refused with the reason, and no account is made.
func TestWeakPasswordsRefused(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	admin := srv.Client(goclient.Connect, srv.AdminToken())
	users := countRows(t, srv, "users")
	for _, tt := range []struct{ password, want string }{
		{"spongebob", "password is too common"},
		{"babygirl1", "password is too common"},
		{"tinkerbell", "password is too common"},
		{"12345678910", "password is too common"},
		{"dana.scully1", "password is too similar to your email"},
		{"abcdefghijkl", "password is too predictable"},
	} {
		t.Run(tt.password, func(t *testing.T) {
			_, err := admin.Admin.CreateUser(context.Background(), connect.NewRequest(&adminv1.CreateUserRequest{
				Email: "dana.scully@example.com", Password: tt.password, Roles: []string{"member"},
			}))
			if codeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want invalid_argument saying %q", err, tt.want)
			}
		})
	}
	if n := countRows(t, srv, "users"); n != users {
		t.Errorf("got %d users, want %d: a refused password must create nothing", n, users)
	}
}
