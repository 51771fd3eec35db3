package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/internal/servertest"
	"github.com/connectguard/guard/service/auth"
)

// injected is a value that would forge a log record of its own if a
// handler wrote it unquoted.
const injected = "x\nlevel=ERROR msg=injected user_id=admin\r\n{\"level\":\"ERROR\",\"msg\":\"injected\"}"

// TestLogsLeakNothing runs attacks on credentials and on the log itself
// through the real server at -log-level=debug, in both log formats, then
// reads everything the server logged: no secret the test used (passwords,
// right and wrong; access and refresh tokens, spent ones included; API
// keys and their secrets, forged ones included; session cookies; note
// bodies) appears anywhere, every line is one well-formed record, and no
// value a caller chose became a record of its own.
func TestLogsLeakNothing(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			srv := servertest.Start(t, "-log-format="+format, "-cors-origins="+allowedOrigin)
			secrets := attackCredentials(t, srv)
			logs := srv.Logs()
			for _, s := range secrets {
				if s == "" {
					t.Fatal("a secret of the test is empty")
				}
				if strings.Contains(logs, s) {
					t.Errorf("got a secret (%.6s...) in the server log, want none", s)
				}
			}
			records := parseLog(t, format, logs)
			var access int
			for _, r := range records {
				if r["msg"] == "injected" || r["msg"] == "" {
					t.Errorf("got a forged record %v", r)
				}
				if r["msg"] == "rpc" {
					access++
					for _, k := range []string{"time", "request_id", "procedure", "protocol", "user_id", "auth", "client_ip", "code", "duration"} {
						if r[k] == "" {
							t.Errorf("access line %v has no %s", r, k)
						}
					}
					if !strings.HasSuffix(r["time"], "Z") {
						t.Errorf("access line time %q, want UTC", r["time"])
					}
				}
			}
			if access < 20 {
				t.Errorf("got %d access lines, want one per call (at least 20)", access)
			}
			if !strings.Contains(logs, "auth=api_key") && !strings.Contains(logs, `"auth":"api_key"`) {
				t.Error("no access line names the api_key auth method")
			}
		})
	}
}

// attackCredentials makes credentials of every kind and attacks with them
// and with forged ones, and returns every secret it used.
func attackCredentials(t *testing.T, srv *servertest.Server) []string {
	t.Helper()
	ctx := context.Background()
	const (
		wrongPassword = "wrong password tried by an attacker 7"
		noteBody      = "the body of a private note 42"
	)
	admin := srv.Client(goclient.Connect, srv.AdminToken())
	user := addUser(t, admin, "logged@example.com", "member")
	pair := login(t, srv, user.Email, user.Password)
	secrets := []string{servertest.AdminPassword, user.Password, wrongPassword, noteBody, pair.GetAccessToken(), pair.GetRefreshToken()}
	h := bearer(pair.GetAccessToken())

	// Tokens: refresh once (rotation), then replay the spent one (reuse:
	// the session is revoked); tampered, alg=none, garbage and oversized
	// access tokens.
	res, body := post(t, srv, procRefresh, refreshJSON(pair.GetRefreshToken()), nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("refresh: HTTP %d %s", res.StatusCode, body)
	}
	var rotated struct{ AccessToken, RefreshToken string }
	if err := json.Unmarshal([]byte(body), &rotated); err != nil || rotated.RefreshToken == "" {
		t.Fatalf("refresh body %s: %v", body, err)
	}
	secrets = append(secrets, rotated.AccessToken, rotated.RefreshToken)
	post(t, srv, procRefresh, refreshJSON(pair.GetRefreshToken()), nil)
	parts := strings.Split(rotated.AccessToken, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"member"`, `"admin"`, 1))) + "." + parts[2]
	algNone := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + "."
	garbage := strings.Repeat("garbage-credential-", 400)
	secrets = append(secrets, tampered, parts[2], garbage)
	for _, tok := range []string{rotated.AccessToken, tampered, algNone, garbage, "not-a-token" + oneLine.Replace(injected)} {
		post(t, srv, procWhoAmI, `{}`, bearer(tok))
	}

	// Passwords: wrong ones (a lockout follows), an email that carries a
	// forged log line, a weak new password.
	for range 6 {
		post(t, srv, procLogin, loginJSON(user.Email, wrongPassword, false), nil)
	}
	post(t, srv, procLogin, loginJSON("nobody"+injected+"@example.com", wrongPassword, false), nil)
	fresh := srv.CreateUser("fresh@example.com", "member")
	secrets = append(secrets, fresh.Token)
	fc := srv.Client(goclient.Connect, fresh.Token)
	const newPassword = "a brand new password for fresh 9"
	if _, err := fc.Auth.ChangePassword(ctx, connect.NewRequest(&authv1.ChangePasswordRequest{
		CurrentPassword: fresh.Password, NewPassword: newPassword,
	})); err != nil {
		t.Fatalf("change password: %v", err)
	}
	_, err := fc.Auth.ChangePassword(ctx, connect.NewRequest(&authv1.ChangePasswordRequest{CurrentPassword: wrongPassword, NewPassword: "password"}))
	if err == nil {
		t.Fatal("a change of password with a wrong current password worked")
	}
	secrets = append(secrets, newPassword)

	// API keys: a good one, in either header; its id with a forged secret;
	// after revocation.
	adminKey := newAPIKey(t, admin, "logs", "notes:read")
	key := adminKey.GetKey()
	id, secret := splitKey(t, key)
	forgedKey := "gk_" + id + "_" + strings.Repeat("A", len(secret))
	secrets = append(secrets, key, secret, forgedKey)
	post(t, srv, procWhoAmI, `{}`, bearer(key))
	post(t, srv, procWhoAmI, `{}`, http.Header{"X-Api-Key": {key}})
	post(t, srv, procWhoAmI, `{}`, bearer(forgedKey))
	post(t, srv, procWhoAmI, `{}`, http.Header{"X-Api-Key": {forgedKey + injected[:1]}})
	if _, err := admin.Auth.RevokeAPIKey(ctx, connect.NewRequest(&authv1.RevokeAPIKeyRequest{Id: adminKey.GetApiKey().GetId()})); err != nil {
		t.Fatalf("revoke key: %v", err)
	}
	post(t, srv, procWhoAmI, `{}`, bearer(key))

	// Cookies: a good session cookie, from the page's own origin and from
	// another site (CSRF refused); a forged one; a cookie and a token at
	// once.
	cookie, _, _ := cookieLogin(t, srv, fresh.Email, newPassword, nil)
	forgedCookie := cookie[:len(cookie)/2] + strings.Repeat("B", len(cookie)-len(cookie)/2)
	secrets = append(secrets, cookie, forgedCookie)
	post(t, srv, procWhoAmI, `{}`, withCookie(cookie))
	post(t, srv, procCreateNote, noteJSON, http.Header{"Cookie": {auth.CookieName + "=" + cookie}, "Origin": {evilOrigin}, "Sec-Fetch-Site": {"cross-site"}})
	post(t, srv, procWhoAmI, `{}`, withCookie(forgedCookie))
	both := withCookie(cookie)
	both.Set("Authorization", "Bearer "+fresh.Token)
	post(t, srv, procWhoAmI, `{}`, both)

	// Bodies, paths and headers a caller chose: a private note, an invalid
	// one, a procedure path and headers carrying a forged line, a spoofed
	// client IP, and long garbage.
	res, body = post(t, srv, procCreateNote, `{"title":"private","body":"`+noteBody+`"}`, h)
	if res.StatusCode != http.StatusUnauthorized { // the session was revoked by the refresh-token reuse
		t.Logf("create note with a revoked session: HTTP %d %s", res.StatusCode, body)
	}
	post(t, srv, procCreateNote, `{"title":"private","body":"`+noteBody+`"}`, bearer(fresh.Token))
	post(t, srv, procCreateNote, `{"title":"`+strings.Repeat("t", 5000)+`","body":"`+noteBody+`"}`, bearer(fresh.Token))
	post(t, srv, "/guard.notes.v1.NoteService/GetNote"+url.PathEscape(injected), `{}`, bearer(fresh.Token))
	post(t, srv, "/guard.notes.v1.NoteService/GetNote"+url.PathEscape(injected), `{}`, nil)
	post(t, srv, procWhoAmI, `{}`, http.Header{
		"User-Agent":      {"agent" + oneLine.Replace(injected)},
		"X-Request-Id":    {"req" + oneLine.Replace(injected)},
		"X-Forwarded-For": {"203.0.113.7, evil level=ERROR msg=injected"},
		"Authorization":   {"Bearer " + fresh.Token},
	})
	post(t, srv, procWhoAmI, strings.Repeat("\x00\xff{garbage", 3000), bearer(fresh.Token))
	forgedField, _ := json.Marshal(map[string]string{injected: noteBody}) // decoding errors are logged at debug
	post(t, srv, procWhoAmI, string(forgedField), bearer(fresh.Token))
	post(t, srv, procCreateNote, string(forgedField), bearer(fresh.Token))
	return secrets
}

// oneLine makes a value a header may carry (HTTP clients refuse line
// breaks in headers).
var oneLine = strings.NewReplacer("\r", " ", "\n", " ")

// parseLog parses the server log, failing the test on any line that is
// not one whole record (text: key=value pairs from time=; json: one
// object), and returns the records as string maps.
func parseLog(t *testing.T, format, logs string) []map[string]string {
	t.Helper()
	var records []map[string]string
	for line := range strings.Lines(logs) {
		line = strings.TrimSuffix(line, "\n")
		r := map[string]string{}
		if format == "json" {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Errorf("got a log line that is not a JSON record: %q", line)
				continue
			}
			for k, v := range m {
				if s, ok := v.(string); ok {
					r[k] = s
				} else {
					b, _ := json.Marshal(v)
					r[k] = string(b)
				}
			}
		} else {
			var ok bool
			if r, ok = parseTextRecord(line); !ok || !strings.HasPrefix(line, "time=") {
				t.Errorf("got a log line that is not a text record: %q", line)
				continue
			}
		}
		records = append(records, r)
	}
	return records
}

// parseTextRecord parses a line of slog's text handler: key=value pairs,
// a value either bare (no space, quote or =) or Go-quoted.
func parseTextRecord(line string) (map[string]string, bool) {
	r := map[string]string{}
	for line != "" {
		key, rest, ok := strings.Cut(line, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \"") {
			return nil, false
		}
		var value string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, false
			}
			value, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			value, rest, _ = strings.Cut(rest, " ")
			rest = " " + rest
			if strings.ContainsAny(value, "\"=") {
				return nil, false
			}
		}
		r[key] = value
		if rest == " " || rest == "" {
			break
		}
		if !strings.HasPrefix(rest, " ") {
			return nil, false
		}
		line = rest[1:]
	}
	return r, true
}
