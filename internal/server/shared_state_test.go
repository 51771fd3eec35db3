package server_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectguard/guard/internal/redistest"
	"github.com/connectguard/guard/internal/servertest"
)

// TestReplicasShareSecurityState runs two replicas of the server binary,
// A and B, as separate processes sharing one PostgreSQL database and one
// Redis
// (lockouts, the invalidation channel and rate limits, each under a key
// prefix of the test's own), and attacks each piece of state through one
// replica and checks it holds on the other: a lockout, a logout, a reused
// refresh token, a revoked API key, a signing key rotation with
// revoke_previous. A refused call answers its code and leaks no
// credential. A change reaches B within the bound of one second (cache
// expiry, key reload); the test waits for it up to 10 s, and asserts no
// timing.
func TestReplicasShareSecurityState(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	client := redistest.Client(t)
	prefix := redistest.Prefix(t, client)
	dir := t.TempDir()
	bin := buildServer(t, dir)
	db := sharedDatabase(t)
	flags := []string{
		db.flag, "-log-level=debug",
		"-redis=" + redistest.URL, "-redis-prefix=" + prefix + "rl:",
		"-redis-lockout-prefix=" + prefix + "lo:", "-redis-channel=" + prefix + "inv",
		"-lockout-failures=3",
		"-trusted-proxies=127.0.0.1", // each phase speaks for a client IP of its own
	}
	// Both at once, on an empty schema: they race to migrate it and to
	// create the first admin and the first signing key.
	rs := startReplicas(t, bin, flags, "A", "B")
	a, b := rs[0], rs[1]
	if got := strings.Count(a.stdout.String()+b.stdout.String(), "created admin"); got != 1 {
		t.Errorf("replicas starting together created the admin %d times, want once; stdout:\nA: %s\nB: %s", got, a.stdout, b.stdout)
	}
	if got := db.count(t, "users", "true"); got != 1 {
		t.Errorf("users after both started = %d, want 1 (the admin)", got)
	}
	if got := db.count(t, "signing_keys", "true"); got != 1 {
		t.Errorf("signing keys after both started = %d, want 1", got)
	}
	admin := replicaLogin(t, a, servertest.AdminEmail, servertest.AdminPassword)
	replicaLogin(t, b, servertest.AdminEmail, servertest.AdminPassword)

	// A user created on A logs in on B.
	createUser := func(email string) {
		t.Helper()
		res, body := call(t, a, "/guard.admin.v1.AdminService/CreateUser", admin, "192.0.2.200",
			`{"email":"`+email+`","password":"a long test password 1","roles":["member"]}`)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("CreateUser %s on A: HTTP %d %s", email, res.StatusCode, body)
		}
	}
	for _, u := range []string{"lock@example.com", "logout@example.com", "reuse@example.com", "key@example.com", "noteowner@example.com", "notewriter@example.com"} {
		createUser(u)
	}
	replicaLogin(t, b, "lock@example.com", "a long test password 1")

	t.Run("lockout_through_A_holds_on_B", func(t *testing.T) {
		const attacker, owner = "198.51.100.66", "203.0.113.9"
		for i := range 3 {
			res, body := call(t, a, "/guard.auth.v1.AuthService/Login", "", attacker, `{"email":"lock@example.com","password":"wrong guess `+string(rune('a'+i))+`"}`)
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong password %d on A: HTTP %d %s, want 401", i+1, res.StatusCode, body)
			}
		}
		sessions := db.count(t, "sessions", "user_id = (SELECT id FROM users WHERE email = $1)", "lock@example.com")
		// The right password, from the attacker's network, on B.
		res, body := call(t, b, "/guard.auth.v1.AuthService/Login", "", attacker, `{"email":"lock@example.com","password":"a long test password 1"}`)
		if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "resource_exhausted") || res.Header.Get("Retry-After") == "" {
			t.Errorf("right password on B from the locked-out network: HTTP %d %s (Retry-After %q), want 429 resource_exhausted with Retry-After",
				res.StatusCode, body, res.Header.Get("Retry-After"))
		}
		if strings.Contains(body, "accessToken") || strings.Contains(body, "refreshToken") {
			t.Errorf("a locked-out login leaked a token: %s", body)
		}
		if got := db.count(t, "sessions", "user_id = (SELECT id FROM users WHERE email = $1)", "lock@example.com"); got != sessions {
			t.Errorf("sessions of the user went from %d to %d through a locked-out login", sessions, got)
		}
		// The owner, elsewhere, is not locked out, on either replica.
		for _, r := range []*replica{a, b} {
			if res, body := call(t, r, "/guard.auth.v1.AuthService/Login", "", owner, `{"email":"lock@example.com","password":"a long test password 1"}`); res.StatusCode != http.StatusOK {
				t.Errorf("the owner on %s from another network: HTTP %d %s, want 200", r.name, res.StatusCode, body)
			}
		}
	})

	t.Run("logout_on_A_rejects_the_token_on_B", func(t *testing.T) {
		access, _ := replicaSession(t, a, "logout@example.com", "192.0.2.10")
		if res, body := call(t, b, "/guard.auth.v1.AuthService/WhoAmI", access, "192.0.2.10", `{}`); res.StatusCode != http.StatusOK {
			t.Fatalf("WhoAmI on B before the logout: HTTP %d %s", res.StatusCode, body) // B caches the session's state
		}
		if res, body := call(t, a, "/guard.auth.v1.AuthService/Logout", access, "192.0.2.10", `{}`); res.StatusCode != http.StatusOK {
			t.Fatalf("Logout on A: HTTP %d %s", res.StatusCode, body)
		}
		refusedOn(t, b, "/guard.auth.v1.AuthService/WhoAmI", access, `{}`)
	})

	t.Run("note_share_demoted_on_A_holds_on_B", func(t *testing.T) {
		owner, _ := replicaSession(t, a, "noteowner@example.com", "192.0.2.12")
		writer, _ := replicaSession(t, b, "notewriter@example.com", "192.0.2.12")
		_, who := call(t, b, "/guard.auth.v1.AuthService/WhoAmI", writer, "192.0.2.12", `{}`)
		var me struct{ User struct{ ID string } }
		if err := json.Unmarshal([]byte(who), &me); err != nil || me.User.ID == "" {
			t.Fatalf("WhoAmI: %s", who)
		}
		_, created := call(t, a, "/guard.notes.v1.NoteService/CreateNote", owner, "192.0.2.12", `{"title":"t0","body":"b"}`)
		var note struct{ Note struct{ ID string } }
		if err := json.Unmarshal([]byte(created), &note); err != nil || note.Note.ID == "" {
			t.Fatalf("CreateNote on A: %s", created)
		}
		shareAs := func(perm string) {
			t.Helper()
			res, body := call(t, a, "/guard.notes.v1.NoteService/ShareNote", owner, "192.0.2.12",
				`{"id":"`+note.Note.ID+`","userId":"`+me.User.ID+`","permission":"`+perm+`"}`)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("ShareNote %s on A: HTTP %d %s", perm, res.StatusCode, body)
			}
		}
		update := func(title string) (*http.Response, string) {
			return call(t, b, "/guard.notes.v1.NoteService/UpdateNote", writer, "192.0.2.12",
				`{"note":{"id":"`+note.Note.ID+`","title":"`+title+`"},"updateMask":"title"}`)
		}
		shareAs("SHARE_PERMISSION_WRITER")
		if res, body := update("t1"); res.StatusCode != http.StatusOK { // B caches the writer's access
			t.Fatalf("UpdateNote on B as writer: HTTP %d %s", res.StatusCode, body)
		}
		shareAs("SHARE_PERMISSION_READER")
		deadline := time.Now().Add(10 * time.Second)
		for {
			res, body := update("defaced")
			if res.StatusCode == http.StatusForbidden && strings.Contains(body, "permission_denied") {
				break
			}
			if res.StatusCode != http.StatusOK || time.Now().After(deadline) {
				t.Fatalf("UpdateNote on B after the demotion on A: HTTP %d %s, want 403 permission_denied within 10 s", res.StatusCode, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("refresh_token_reuse_across_replicas_revokes_the_session", func(t *testing.T) {
		access, refresh := replicaSession(t, a, "reuse@example.com", "192.0.2.11")
		res, body := call(t, a, "/guard.auth.v1.AuthService/Refresh", "", "192.0.2.11", `{"refreshToken":"`+refresh+`"}`)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("Refresh on A: HTTP %d %s", res.StatusCode, body)
		}
		var next struct{ AccessToken, RefreshToken string }
		if err := json.Unmarshal([]byte(body), &next); err != nil || next.RefreshToken == "" {
			t.Fatalf("Refresh on A: %s", body)
		}
		if res, body := call(t, b, "/guard.auth.v1.AuthService/WhoAmI", next.AccessToken, "192.0.2.11", `{}`); res.StatusCode != http.StatusOK {
			t.Fatalf("WhoAmI on B with the refreshed token: HTTP %d %s", res.StatusCode, body)
		}
		// A thief replays the spent refresh token on B.
		res, body = call(t, b, "/guard.auth.v1.AuthService/Refresh", "", "198.51.100.77", `{"refreshToken":"`+refresh+`"}`)
		if res.StatusCode != http.StatusUnauthorized || strings.Contains(body, "accessToken") {
			t.Fatalf("reused refresh token on B: HTTP %d %s, want 401 and no token", res.StatusCode, body)
		}
		// The whole session is revoked, on both replicas: every access
		// token and the live refresh token.
		refusedOn(t, b, "/guard.auth.v1.AuthService/WhoAmI", next.AccessToken, `{}`)
		refusedOn(t, a, "/guard.auth.v1.AuthService/WhoAmI", access, `{}`)
		res, body = call(t, a, "/guard.auth.v1.AuthService/Refresh", "", "192.0.2.11", `{"refreshToken":"`+next.RefreshToken+`"}`)
		if res.StatusCode != http.StatusUnauthorized || strings.Contains(body, "accessToken") {
			t.Errorf("the session's live refresh token on A after the reuse: HTTP %d %s, want 401 and no token", res.StatusCode, body)
		}
	})

	t.Run("api_key_revoked_on_A_fails_on_B", func(t *testing.T) {
		access, _ := replicaSession(t, a, "key@example.com", "192.0.2.12")
		res, body := call(t, a, "/guard.auth.v1.AuthService/CreateAPIKey", access, "192.0.2.12", `{"name":"ci","scopes":["notes:read"],"ttl":"3600s"}`)
		var created struct {
			Key    string
			APIKey struct{ ID string } `json:"apiKey"`
		}
		if err := json.Unmarshal([]byte(body), &created); res.StatusCode != http.StatusOK || err != nil || created.Key == "" {
			t.Fatalf("CreateAPIKey on A: HTTP %d %s", res.StatusCode, body)
		}
		if res, body := call(t, b, "/guard.notes.v1.NoteService/ListNotes", created.Key, "192.0.2.12", `{}`); res.StatusCode != http.StatusOK {
			t.Fatalf("ListNotes on B with the key: HTTP %d %s", res.StatusCode, body)
		}
		if res, body := call(t, a, "/guard.auth.v1.AuthService/RevokeAPIKey", access, "192.0.2.12", `{"id":"`+created.APIKey.ID+`"}`); res.StatusCode != http.StatusOK {
			t.Fatalf("RevokeAPIKey on A: HTTP %d %s", res.StatusCode, body)
		}
		refusedOn(t, b, "/guard.notes.v1.NoteService/ListNotes", created.Key, `{}`)
	})

	t.Run("key_rotation_on_A_holds_on_B", func(t *testing.T) {
		old := replicaLogin(t, a, servertest.AdminEmail, servertest.AdminPassword)
		if res, body := call(t, b, "/guard.auth.v1.AuthService/WhoAmI", old, "192.0.2.13", `{}`); res.StatusCode != http.StatusOK {
			t.Fatalf("WhoAmI on B with a token of the first key: HTTP %d %s", res.StatusCode, body)
		}
		rotate := func(revoke bool) string {
			t.Helper()
			res, body := call(t, a, "/guard.admin.v1.AdminService/RotateSigningKey", old, "192.0.2.13", `{"revokePrevious":`+map[bool]string{true: "true", false: "false"}[revoke]+`}`)
			var out struct{ KeyID string }
			if err := json.Unmarshal([]byte(body), &out); res.StatusCode != http.StatusOK || err != nil || out.KeyID == "" {
				t.Fatalf("RotateSigningKey on A: HTTP %d %s", res.StatusCode, body)
			}
			return out.KeyID
		}
		// A new key: a token A signs with it is accepted on B at once (B
		// has been told, or reloads for the unknown kid).
		second := rotate(false)
		tok := replicaLogin(t, a, servertest.AdminEmail, servertest.AdminPassword)
		if kid := tokenKeyID(t, tok); kid != second {
			t.Fatalf("A signs with kid %q after the rotation, want %q", kid, second)
		}
		if res, body := call(t, b, "/guard.auth.v1.AuthService/WhoAmI", tok, "192.0.2.13", `{}`); res.StatusCode != http.StatusOK {
			t.Errorf("WhoAmI on B with a token of the new key: HTTP %d %s, want 200", res.StatusCode, body)
		}
		if res, body := call(t, b, "/guard.auth.v1.AuthService/WhoAmI", old, "192.0.2.13", `{}`); res.StatusCode != http.StatusOK {
			t.Errorf("WhoAmI on B with a token of the previous key, not revoked: HTTP %d %s, want 200", res.StatusCode, body)
		}
		// A leak: rotate again, revoking every previous key.
		third := rotate(true)
		refusedOn(t, b, "/guard.auth.v1.AuthService/WhoAmI", old, `{}`)
		refusedOn(t, b, "/guard.auth.v1.AuthService/WhoAmI", tok, `{}`)
		fresh := replicaLogin(t, a, servertest.AdminEmail, servertest.AdminPassword)
		if res, body := call(t, b, "/guard.auth.v1.AuthService/WhoAmI", fresh, "192.0.2.13", `{}`); res.StatusCode != http.StatusOK {
			t.Errorf("WhoAmI on B with a token of the third key: HTTP %d %s, want 200", res.StatusCode, body)
		}
		fresh = replicaLogin(t, b, servertest.AdminEmail, servertest.AdminPassword)
		if kid := tokenKeyID(t, fresh); kid != third {
			t.Errorf("B signs with kid %q, want the third key %q", kid, third)
		}
		res, err := http.Get(b.url + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var jwks struct{ Keys []struct{ Kid string } }
		if err := json.NewDecoder(res.Body).Decode(&jwks); err != nil || len(jwks.Keys) != 1 || jwks.Keys[0].Kid != third {
			t.Errorf("JWKS of B = %+v (%v), want the third key alone", jwks, err)
		}
	})
}

// replicaSession logs in on r from ip and returns the access and refresh
// tokens.
func replicaSession(t *testing.T, r *replica, email, ip string) (access, refresh string) {
	t.Helper()
	res, body := call(t, r, "/guard.auth.v1.AuthService/Login", "", ip, `{"email":"`+email+`","password":"a long test password 1"}`)
	var out struct{ AccessToken, RefreshToken string }
	if err := json.Unmarshal([]byte(body), &out); res.StatusCode != http.StatusOK || err != nil || out.RefreshToken == "" {
		t.Fatalf("login %s on %s: HTTP %d %s", email, r.name, res.StatusCode, body)
	}
	return out.AccessToken, out.RefreshToken
}

// refusedOn calls procedure on r with credential until it is refused as
// unauthenticated, for at most 10 s, and checks that the refusal leaks
// nothing.
func refusedOn(t *testing.T, r *replica, procedure, credential, body string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, got := call(t, r, procedure, credential, "192.0.2.250", body)
		if res.StatusCode == http.StatusUnauthorized {
			if !strings.Contains(got, `"unauthenticated"`) || strings.Contains(got, "@example.com") || res.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s on %s: refused with %s (WWW-Authenticate %q), want unauthenticated with a challenge and nothing of the user",
					procedure, r.name, got, res.Header.Get("WWW-Authenticate"))
			}
			return
		}
		if res.StatusCode != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("%s on %s: HTTP %d %s, want 401 unauthenticated within 10 s", procedure, r.name, res.StatusCode, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tokenKeyID is the kid in an access token's header.
func tokenKeyID(t *testing.T, tok string) string {
	t.Helper()
	header, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}
