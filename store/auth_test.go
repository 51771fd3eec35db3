package store_test

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectguard/guard/store"
)

// The fake clock of open starts at 2030-01-02 03:04:05 and ticks a second
// per reading; these times lie well before and after everything a test does.
var (
	past   = time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	future = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
)

// hash returns the SHA-256 of s, as callers hash tokens, cookies and secrets.
func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func createSession(t *testing.T, db *store.DB, userID string, expire time.Time, cookieHash []byte) store.Session {
	t.Helper()
	s, err := db.CreateSession(t.Context(), userID, expire, cookieHash)
	if err != nil {
		t.Fatalf("CreateSession(%q) error = %v", userID, err)
	}
	return s
}

func createRefreshToken(t *testing.T, db *store.DB, sessionID string, h []byte, expire time.Time) {
	t.Helper()
	if err := db.CreateRefreshToken(t.Context(), sessionID, h, expire); err != nil {
		t.Fatalf("CreateRefreshToken(%q) error = %v", sessionID, err)
	}
}

func createAPIKey(t *testing.T, db *store.DB, userID, name string, scopes ...string) store.APIKey {
	t.Helper()
	k := store.APIKey{ID: store.NewID(), UserID: userID, Name: name, Scopes: scopes, Last4: "wxyz", SecretHash: hash("secret of " + name)}
	k, err := db.CreateAPIKey(t.Context(), k)
	if err != nil {
		t.Fatalf("CreateAPIKey(%q) error = %v", name, err)
	}
	return k
}

func sessionState(t *testing.T, db *store.DB, id string) store.SessionState {
	t.Helper()
	st, err := db.SessionState(t.Context(), id)
	if err != nil {
		t.Fatalf("SessionState(%q) error = %v", id, err)
	}
	return st
}

func apiKeyState(t *testing.T, db *store.DB, k store.APIKey) store.APIKeyState {
	t.Helper()
	st, err := db.APIKeyState(t.Context(), k.ID, k.SecretHash)
	if err != nil {
		t.Fatalf("APIKeyState(%q) error = %v", k.ID, err)
	}
	return st
}

// dump returns every row of the tables authentication writes, read behind
// the API's back, so that a test can assert that a call wrote nothing.
func dump(t *testing.T, db *store.DB) string {
	t.Helper()
	var lines []string
	for _, table := range []string{"users", "user_roles", "sessions", "refresh_tokens", "api_keys", "signing_keys"} {
		// table is a constant of the test, never input.
		rows, err := store.RawSQL(db).QueryContext(t.Context(), "SELECT * FROM "+table)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			lines = append(lines, fmt.Sprintf("%s %v\n", table, vals))
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		rows.Close()
	}
	// Sorted: neither engine promises an order without ORDER BY.
	slices.Sort(lines)
	return strings.Join(lines, "")
}

// versions returns the applied schema versions in order.
func versions(t *testing.T, db *store.DB) []int {
	t.Helper()
	rows, err := store.RawSQL(db).QueryContext(t.Context(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestMigrationAuth(t *testing.T) {
	t.Parallel()

	t.Run("fresh_database", func(t *testing.T) {
		t.Parallel()
		db := openSQLite(t)
		if got, want := versions(t, db), []int{1, 2, 3, 4}; !slices.Equal(got, want) {
			t.Errorf("schema_migrations versions = %v, want %v", got, want)
		}
		// The per-request cookie lookup must use the index, not scan sessions.
		var plan strings.Builder
		rows, err := store.SQL(db).QueryContext(t.Context(),
			"EXPLAIN QUERY PLAN SELECT id FROM sessions WHERE cookie_hash = ?", hash("c"))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(detail + "\n")
		}
		if got := plan.String(); !strings.Contains(got, "sessions_cookie_hash") {
			t.Errorf("query plan of cookie lookup = %q, want it to use sessions_cookie_hash", got)
		}
	})

	t.Run("from_version_1", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		path := filepath.Join(t.TempDir(), "guard.db")
		initSQL, err := os.ReadFile(filepath.Join("migrations", "sqlite", "0001_init.sql"))
		if err != nil {
			t.Fatal(err)
		}
		// A database as the previous release left it: version 1 and a token
		// session with a refresh token.
		old, err := sql.Open("sqlite3", path)
		if err != nil {
			t.Fatal(err)
		}
		const created = 1_893_456_000_000_000 // 2030-01-01 in microseconds
		for _, stmt := range []string{
			"CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, apply_time INTEGER NOT NULL) STRICT",
			string(initSQL),
			fmt.Sprintf("INSERT INTO schema_migrations VALUES (1, %d)", created),
			fmt.Sprintf("INSERT INTO users VALUES ('u1', 'a@example.com', 'h', 0, %d, %d)", created, created),
			fmt.Sprintf("INSERT INTO sessions VALUES ('s1', 'u1', %d, %d, %d, NULL)", created, created, future.UnixMicro()),
			fmt.Sprintf("INSERT INTO audit_events VALUES ('a2', %d, 'u1', '/p', 'ok', '', '', '')", created+1),
			fmt.Sprintf("INSERT INTO audit_events VALUES ('a1', %d, 'u1', '/p', 'ok', '', '', '')", created),
		} {
			if _, err := old.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("set up version 1: %v", err)
			}
		}
		if _, err := old.ExecContext(ctx, "INSERT INTO refresh_tokens VALUES (?, 's1', ?, ?, NULL)",
			hash("t0"), created, future.UnixMicro()); err != nil {
			t.Fatal(err)
		}
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}

		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatalf("Open(version 1 database) error = %v", err)
		}
		if got, want := versions(t, db), []int{1, 2, 3, 4}; !slices.Equal(got, want) {
			t.Errorf("schema_migrations versions after upgrade = %v, want %v", got, want)
		}
		// Audit rows from before the chain get a seq in time order and no
		// hash; new rows chain after them.
		if err := db.RecordAuditEvent(ctx, store.AuditEvent{Procedure: "/p", Code: "ok"}); err != nil {
			t.Fatal(err)
		}
		if r, err := db.VerifyAudit(ctx); err != nil || !r.OK() || r.Legacy != 2 || r.Rows != 1 {
			t.Errorf("VerifyAudit() after upgrade = %v, %v; want OK with 2 rows without a hash and 1 chained", r, err)
		}
		if got, err := db.ListAuditEvents(ctx, store.AuditFilter{}, 0); err != nil || len(got) != 3 || got[2].ID != "a1" || got[1].ID != "a2" || got[0].Seq != 3 {
			t.Errorf("ListAuditEvents() after upgrade = %+v, %v; want the new row (seq 3), a2, a1", got, err)
		}
		s, err := db.Session(ctx, "s1")
		if err != nil {
			t.Fatalf("Session(old session) error = %v", err)
		}
		if s.Cookie || s.RevokeTime != nil {
			t.Errorf("Session(old session) = %+v, want a token session, not revoked", s)
		}
		if _, err := db.RotateRefreshToken(ctx, hash("t0"), hash("t1"), future); err != nil {
			t.Errorf("RotateRefreshToken(old token) error = %v", err)
		}
		if _, err := db.CreateSession(ctx, "u1", future, hash("cookie")); err != nil {
			t.Errorf("CreateSession(cookie) after upgrade error = %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}

		db = openPath(t, path)
		if got, want := versions(t, db), []int{1, 2, 3, 4}; !slices.Equal(got, want) {
			t.Errorf("schema_migrations versions after reopen = %v, want %v", got, want)
		}
		if _, err := db.SessionByCookie(ctx, hash("cookie")); err != nil {
			t.Errorf("SessionByCookie() after reopen error = %v", err)
		}
	})
}

func testSessionByCookie(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	u := createUser(t, db, "a@example.com")
	cookie := createSession(t, db, u.ID, future, hash("cookie"))
	token := createSession(t, db, u.ID, future, nil)
	if !cookie.Cookie || token.Cookie {
		t.Errorf("Cookie of cookie, token session = %v, %v, want true, false", cookie.Cookie, token.Cookie)
	}

	got, err := db.SessionByCookie(ctx, hash("cookie"))
	if err != nil {
		t.Fatalf("SessionByCookie() error = %v", err)
	}
	if !reflect.DeepEqual(got, cookie) {
		t.Errorf("SessionByCookie() = %+v, want %+v", got, cookie)
	}
	if loaded, err := db.Session(ctx, cookie.ID); err != nil || !reflect.DeepEqual(loaded, cookie) {
		t.Errorf("Session(cookie session) = %+v, %v, want %+v", loaded, err, cookie)
	}
	if loaded, err := db.Session(ctx, token.ID); err != nil || !reflect.DeepEqual(loaded, token) {
		t.Errorf("Session(token session) = %+v, %v, want %+v", loaded, err, token)
	}

	misses := []struct {
		name string
		hash []byte
	}{
		{"unknown", hash("other cookie")},
		{"prefix", hash("cookie")[:16]},
		{"nil_matches_no_token_session", nil},
		{"empty", []byte{}},
		{"session_id_as_hash", []byte(cookie.ID)},
	}
	for _, tt := range misses {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, err := db.SessionByCookie(ctx, tt.hash); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("SessionByCookie(%x) = %+v, %v, want ErrNotFound", tt.hash, got, err)
			}
		})
	}

	t.Run("invalid_creates", func(t *testing.T) {
		before := dump(t, db)
		invalid := []struct {
			name    string
			hash    []byte
			wantErr error // nil means any error
		}{
			{"duplicate_cookie", hash("cookie"), store.ErrConflict},
			{"empty_hash", []byte{}, nil},
			{"oversized_hash", bytes.Repeat([]byte{1}, 65), nil},
		}
		for _, tt := range invalid {
			_, err := db.CreateSession(ctx, u.ID, future, tt.hash)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("%s: CreateSession() error = %v, want %v", tt.name, err, tt.wantErr)
			}
		}
		if after := dump(t, db); after != before {
			t.Errorf("rows after refused CreateSession calls =\n%s\nwant\n%s", after, before)
		}
	})
}

func testTouch(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	u := createUser(t, db, "a@example.com")
	s := createSession(t, db, u.ID, future, nil)
	k := createAPIKey(t, db, u.ID, "k")
	later := s.LastSeenTime.Add(time.Hour)

	sessionSteps := []struct {
		name string
		seen time.Time
		want time.Time
	}{
		{"forward", later, later},
		{"backward_is_ignored", later.Add(-time.Minute), later},
		{"same", later, later},
	}
	for _, tt := range sessionSteps {
		if err := db.TouchSession(ctx, s.ID, tt.seen); err != nil {
			t.Fatalf("%s: TouchSession() error = %v", tt.name, err)
		}
		got, err := db.Session(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.LastSeenTime.Equal(tt.want) {
			t.Errorf("%s: LastSeenTime = %v, want %v", tt.name, got.LastSeenTime, tt.want)
		}
	}

	keySteps := []struct {
		name string
		used time.Time
		want time.Time
	}{
		{"first", later, later},
		{"forward", later.Add(time.Hour), later.Add(time.Hour)},
		{"backward_is_ignored", later, later.Add(time.Hour)},
	}
	for _, tt := range keySteps {
		if err := db.TouchAPIKey(ctx, k.ID, tt.used); err != nil {
			t.Fatalf("%s: TouchAPIKey() error = %v", tt.name, err)
		}
		got := apiKeyState(t, db, k).Key.LastUseTime
		if got == nil || !got.Equal(tt.want) {
			t.Errorf("%s: LastUseTime = %v, want %v", tt.name, got, tt.want)
		}
	}

	if err := db.TouchSession(ctx, store.NewID(), later); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TouchSession(unknown) error = %v, want ErrNotFound", err)
	}
	if err := db.TouchAPIKey(ctx, store.NewID(), later); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TouchAPIKey(unknown) error = %v, want ErrNotFound", err)
	}
}

func testRevokeUserSessions(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	alice := createUser(t, db, "alice@example.com")
	bob := createUser(t, db, "bob@example.com")
	current := createSession(t, db, alice.ID, future, hash("current"))
	other := createSession(t, db, alice.ID, future, nil)
	earlier := createSession(t, db, alice.ID, future, nil)
	bobs := createSession(t, db, bob.ID, future, nil)
	if err := db.RevokeSession(ctx, earlier.ID); err != nil {
		t.Fatal(err)
	}
	earlierRevoke := sessionState(t, db, earlier.ID).Session.RevokeTime

	steps := []struct {
		name        string
		userID      string
		exceptID    string
		want        int
		wantRevoked []bool // current, other, earlier, bobs
	}{
		{"others_but_current", alice.ID, current.ID, 1, []bool{false, true, true, false}},
		{"again_is_a_no_op", alice.ID, current.ID, 0, []bool{false, true, true, false}},
		{"other_users_session_as_exception", alice.ID, bobs.ID, 1, []bool{true, true, true, false}},
		{"unknown_user", store.NewID(), "", 0, []bool{true, true, true, false}},
		{"all", bob.ID, "", 1, []bool{true, true, true, true}},
	}
	for _, tt := range steps {
		got, err := db.RevokeUserSessions(ctx, tt.userID, tt.exceptID)
		if err != nil {
			t.Fatalf("%s: RevokeUserSessions() error = %v", tt.name, err)
		}
		if got != tt.want {
			t.Errorf("%s: RevokeUserSessions() = %d, want %d", tt.name, got, tt.want)
		}
		for i, s := range []store.Session{current, other, earlier, bobs} {
			if got := sessionState(t, db, s.ID).Session.RevokeTime != nil; got != tt.wantRevoked[i] {
				t.Errorf("%s: session %d revoked = %v, want %v", tt.name, i, got, tt.wantRevoked[i])
			}
		}
	}
	if got := sessionState(t, db, earlier.ID).Session.RevokeTime; !got.Equal(*earlierRevoke) {
		t.Errorf("RevokeTime of session revoked before = %v, want %v kept", got, earlierRevoke)
	}
}

func testSessionState(t *testing.T, e engine) {
	t.Parallel()
	tests := []struct {
		name         string
		change       func(t *testing.T, db *store.DB, u store.User, s store.Session) error
		wantRevoked  bool
		wantDisabled bool
		wantRoles    []string
	}{
		{
			name:      "fresh",
			change:    func(*testing.T, *store.DB, store.User, store.Session) error { return nil },
			wantRoles: []string{"admin", "member"},
		},
		{
			name: "revoked",
			change: func(t *testing.T, db *store.DB, _ store.User, s store.Session) error {
				return db.RevokeSession(t.Context(), s.ID)
			},
			wantRevoked: true,
			wantRoles:   []string{"admin", "member"},
		},
		{
			name: "disabled",
			change: func(t *testing.T, db *store.DB, u store.User, _ store.Session) error {
				return db.DisableUser(t.Context(), u.ID)
			},
			wantRevoked:  true,
			wantDisabled: true,
			wantRoles:    []string{"admin", "member"},
		},
		{
			name: "roles_replaced",
			change: func(t *testing.T, db *store.DB, u store.User, _ store.Session) error {
				_, err := db.SetUserRoles(t.Context(), u.ID, []string{"viewer"})
				return err
			},
			wantRoles: []string{"viewer"},
		},
		{
			name: "roles_removed",
			change: func(t *testing.T, db *store.DB, u store.User, _ store.Session) error {
				_, err := db.SetUserRoles(t.Context(), u.ID, nil)
				return err
			},
			wantRoles: []string{},
		},
		{
			name: "role_with_separators",
			change: func(t *testing.T, db *store.DB, u store.User, _ store.Session) error {
				_, err := db.SetUserRoles(t.Context(), u.ID, []string{`a,b`, `"c"`})
				return err
			},
			wantRoles: []string{`"c"`, `a,b`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := e.open(t)
			u := createUser(t, db, "a@example.com", "member", "admin")
			createUser(t, db, "other@example.com", "root")
			s := createSession(t, db, u.ID, future, nil)
			if err := tt.change(t, db, u, s); err != nil {
				t.Fatalf("change error = %v", err)
			}
			got := sessionState(t, db, s.ID)
			if (got.Session.RevokeTime != nil) != tt.wantRevoked {
				t.Errorf("Session.RevokeTime = %v, want revoked %v", got.Session.RevokeTime, tt.wantRevoked)
			}
			if got.Disabled != tt.wantDisabled {
				t.Errorf("Disabled = %v, want %v", got.Disabled, tt.wantDisabled)
			}
			if got.Roles == nil || !slices.Equal(got.Roles, tt.wantRoles) {
				t.Errorf("Roles = %#v, want %#v", got.Roles, tt.wantRoles)
			}
			loaded, err := db.Session(t.Context(), s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Session, loaded) {
				t.Errorf("Session = %+v, want %+v", got.Session, loaded)
			}
		})
	}

	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		db := e.open(t)
		for _, id := range []string{store.NewID(), "", "' OR 1=1 --"} {
			if _, err := db.SessionState(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("SessionState(%q) error = %v, want ErrNotFound", id, err)
			}
		}
	})
}

func testRotateRefreshToken(t *testing.T, e engine) {
	t.Parallel()

	t.Run("chain", func(t *testing.T) {
		t.Parallel()
		db := e.open(t)
		u := createUser(t, db, "a@example.com")
		s := createSession(t, db, u.ID, future, nil)
		createRefreshToken(t, db, s.ID, hash("t0"), future)
		lastSeen := s.LastSeenTime
		for i := range 3 {
			got, err := db.RotateRefreshToken(t.Context(), hash(fmt.Sprint("t", i)), hash(fmt.Sprint("t", i+1)), future)
			if err != nil {
				t.Fatalf("RotateRefreshToken(t%d) error = %v", i, err)
			}
			if got.ID != s.ID || got.RevokeTime != nil || !got.LastSeenTime.After(lastSeen) {
				t.Errorf("RotateRefreshToken(t%d) = %+v, want session %s, unrevoked, last seen after %v", i, got, s.ID, lastSeen)
			}
			loaded, err := db.Session(t.Context(), s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, loaded) {
				t.Errorf("RotateRefreshToken(t%d) = %+v, want the stored %+v", i, got, loaded)
			}
			lastSeen = got.LastSeenTime
		}
		var rows, spent int
		if err := store.RawSQL(db).QueryRowContext(t.Context(),
			"SELECT COUNT(*), COUNT(spend_time) FROM refresh_tokens").Scan(&rows, &spent); err != nil {
			t.Fatal(err)
		}
		if rows != 4 || spent != 3 {
			t.Errorf("refresh_tokens rows, spent = %d, %d, want 4, 3", rows, spent)
		}
	})

	t.Run("reuse_revokes_session", func(t *testing.T) {
		t.Parallel()
		db := e.open(t)
		ctx := t.Context()
		u := createUser(t, db, "a@example.com")
		s := createSession(t, db, u.ID, future, nil)
		other := createSession(t, db, u.ID, future, nil)
		createRefreshToken(t, db, s.ID, hash("t0"), future)
		if _, err := db.RotateRefreshToken(ctx, hash("t0"), hash("t1"), future); err != nil {
			t.Fatal(err)
		}

		got, err := db.RotateRefreshToken(ctx, hash("t0"), hash("copier's"), future)
		if !errors.Is(err, store.ErrReused) {
			t.Fatalf("RotateRefreshToken(spent) error = %v, want ErrReused", err)
		}
		if got.ID != s.ID || got.RevokeTime == nil {
			t.Errorf("RotateRefreshToken(spent) session = %+v, want session %s, revoked", got, s.ID)
		}
		loaded, err := db.Session(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, loaded) {
			t.Errorf("RotateRefreshToken(spent) session = %+v, want the stored %+v", got, loaded)
		}

		if _, err := db.RotateRefreshToken(ctx, hash("t1"), hash("t2"), future); !errors.Is(err, store.ErrExpired) {
			t.Errorf("RotateRefreshToken(token issued before the reuse) error = %v, want ErrExpired", err)
		}
		// A second reuse still reports reuse, and keeps the first revoke time.
		again, err := db.RotateRefreshToken(ctx, hash("t0"), hash("copier's again"), future)
		if !errors.Is(err, store.ErrReused) {
			t.Errorf("second reuse error = %v, want ErrReused", err)
		}
		if again.RevokeTime == nil || !again.RevokeTime.Equal(*got.RevokeTime) {
			t.Errorf("RevokeTime after second reuse = %v, want %v", again.RevokeTime, got.RevokeTime)
		}
		for _, h := range [][]byte{hash("copier's"), hash("copier's again"), hash("t2")} {
			var n int
			if err := store.RawSQL(db).QueryRowContext(ctx, "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = ?", h).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("refresh token %x stored after a refused rotation", h[:4])
			}
		}
		if st := sessionState(t, db, other.ID); st.Session.RevokeTime != nil {
			t.Errorf("other session of the user RevokeTime = %v, want nil", st.Session.RevokeTime)
		}
	})

	tests := []struct {
		name          string
		sessionExpire time.Time
		tokenExpire   time.Time
		revoke        bool
		replaceOld    bool // present oldHash instead of the token's own hash
		oldHash       []byte
		newHash       []byte
		wantErr       error // nil means any error
	}{
		{name: "unknown", replaceOld: true, oldHash: hash("unknown"), wantErr: store.ErrNotFound},
		{name: "tampered", replaceOld: true, oldHash: append(hash("t0")[:31], hash("t0")[31]^1), wantErr: store.ErrNotFound},
		{name: "empty_old", replaceOld: true, oldHash: []byte{}, wantErr: store.ErrNotFound},
		{name: "nil_old", replaceOld: true, oldHash: nil, wantErr: store.ErrNotFound},
		{name: "token_expired", tokenExpire: past, wantErr: store.ErrExpired},
		{name: "session_expired", sessionExpire: past, wantErr: store.ErrExpired},
		{name: "session_revoked", revoke: true, wantErr: store.ErrExpired},
		{name: "new_hash_taken", newHash: hash("taken"), wantErr: store.ErrConflict},
		{name: "new_equals_old", newHash: hash("t0"), wantErr: store.ErrConflict},
		{name: "empty_new", newHash: []byte{}},
		{name: "oversized_new", newHash: bytes.Repeat([]byte{1}, 65)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := e.open(t)
			ctx := t.Context()
			u := createUser(t, db, "a@example.com")
			sessionExpire, tokenExpire := future, future
			if !tt.sessionExpire.IsZero() {
				sessionExpire = tt.sessionExpire
			}
			if !tt.tokenExpire.IsZero() {
				tokenExpire = tt.tokenExpire
			}
			s := createSession(t, db, u.ID, sessionExpire, nil)
			createRefreshToken(t, db, s.ID, hash("t0"), tokenExpire)
			createRefreshToken(t, db, s.ID, hash("taken"), future)
			if tt.revoke {
				if err := db.RevokeSession(ctx, s.ID); err != nil {
					t.Fatal(err)
				}
			}
			oldHash := hash("t0")
			if tt.replaceOld {
				oldHash = tt.oldHash
			}
			newHash := hash("t1")
			if tt.newHash != nil {
				newHash = tt.newHash
			}
			before := dump(t, db)

			got, err := db.RotateRefreshToken(ctx, oldHash, newHash, future)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("RotateRefreshToken() = %+v, %v, want error %v", got, err, tt.wantErr)
			}
			if got != (store.Session{}) {
				t.Errorf("RotateRefreshToken() session = %+v, want zero", got)
			}
			if errors.Is(err, store.ErrReused) {
				t.Errorf("RotateRefreshToken() error = %v, must not report reuse", err)
			}
			if after := dump(t, db); after != before {
				t.Errorf("rows after refused rotation =\n%s\nwant\n%s", after, before)
			}
		})
	}
}

func testRotateRefreshTokenRace(t *testing.T, e engine) {
	t.Parallel()
	// Two handles on one database: two replicas, with connections of
	// their own.
	dsn := e.dsn(t)
	db, replica := e.reopen(t, dsn), e.reopen(t, dsn)
	ctx := t.Context()
	u := createUser(t, db, "a@example.com")
	s := createSession(t, db, u.ID, future, nil)
	createRefreshToken(t, db, s.ID, hash("t0"), future)

	const callers = 16
	sessions := make([]store.Session, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			on := db
			if i%2 == 1 {
				on = replica
			}
			sessions[i], errs[i] = on.RotateRefreshToken(ctx, hash("t0"), hash(fmt.Sprint("new", i)), future)
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("RotateRefreshToken() #%d and #%d both succeeded, want exactly one", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrReused):
			t.Errorf("RotateRefreshToken() #%d error = %v, want ErrReused", i, err)
		}
		if sessions[i].ID != s.ID {
			t.Errorf("RotateRefreshToken() #%d session id = %q, want %q", i, sessions[i].ID, s.ID)
		}
	}
	if winner < 0 {
		t.Fatal("no RotateRefreshToken() call succeeded, want exactly one")
	}
	if got := sessionState(t, db, s.ID).Session.RevokeTime; got == nil {
		t.Error("session RevokeTime after concurrent reuse = nil, want revoked")
	}
	if got := count(t, db, "refresh_tokens"); got != 2 {
		t.Errorf("refresh_tokens rows = %d, want 2 (the spent one and the winner's)", got)
	}
	if _, err := db.RotateRefreshToken(ctx, hash(fmt.Sprint("new", winner)), hash("next"), future); !errors.Is(err, store.ErrExpired) {
		t.Errorf("RotateRefreshToken(winner's token) error = %v, want ErrExpired", err)
	}
}

func testCreateRefreshToken(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	u := createUser(t, db, "a@example.com")
	s := createSession(t, db, u.ID, future, nil)
	createRefreshToken(t, db, s.ID, hash("t0"), future)
	before := dump(t, db)

	tests := []struct {
		name      string
		sessionID string
		hash      []byte
		wantErr   error // nil means any error
	}{
		{"missing_session", store.NewID(), hash("t1"), store.ErrNotFound},
		{"duplicate_hash", s.ID, hash("t0"), store.ErrConflict},
		{"empty_hash", s.ID, []byte{}, nil},
		{"nil_hash", s.ID, nil, nil},
		{"oversized_hash", s.ID, bytes.Repeat([]byte{1}, 65), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.CreateRefreshToken(t.Context(), tt.sessionID, tt.hash, future)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("CreateRefreshToken() error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if after := dump(t, db); after != before {
		t.Errorf("rows after refused CreateRefreshToken calls =\n%s\nwant\n%s", after, before)
	}
}

func testDisableUser(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	alice := createUser(t, db, "alice@example.com", "admin")
	bob := createUser(t, db, "bob@example.com", "member")
	aliceSessions := []store.Session{
		createSession(t, db, alice.ID, future, nil),
		createSession(t, db, alice.ID, future, hash("alice's cookie")),
	}
	createRefreshToken(t, db, aliceSessions[0].ID, hash("alice's token"), future)
	aliceKeys := []store.APIKey{createAPIKey(t, db, alice.ID, "ci"), createAPIKey(t, db, alice.ID, "backup")}
	bobSession := createSession(t, db, bob.ID, future, nil)
	bobKey := createAPIKey(t, db, bob.ID, "bob's")

	if err := db.DisableUser(ctx, alice.ID); err != nil {
		t.Fatalf("DisableUser() error = %v", err)
	}
	check := func(t *testing.T) {
		t.Helper()
		for _, s := range aliceSessions {
			st := sessionState(t, db, s.ID)
			if !st.Disabled || st.Session.RevokeTime == nil {
				t.Errorf("SessionState(alice's %s) disabled, revoke time = %v, %v, want true, a time", s.ID, st.Disabled, st.Session.RevokeTime)
			}
		}
		for _, k := range aliceKeys {
			st := apiKeyState(t, db, k)
			if !st.Disabled || st.Key.RevokeTime == nil {
				t.Errorf("APIKeyState(alice's %s) disabled, revoke time = %v, %v, want true, a time", k.Name, st.Disabled, st.Key.RevokeTime)
			}
		}
		if st := sessionState(t, db, bobSession.ID); st.Disabled || st.Session.RevokeTime != nil {
			t.Errorf("SessionState(bob's) disabled, revoke time = %v, %v, want false, nil", st.Disabled, st.Session.RevokeTime)
		}
		if st := apiKeyState(t, db, bobKey); st.Disabled || st.Key.RevokeTime != nil {
			t.Errorf("APIKeyState(bob's) disabled, revoke time = %v, %v, want false, nil", st.Disabled, st.Key.RevokeTime)
		}
		if u, err := db.UserByID(ctx, alice.ID); err != nil || !u.Disabled {
			t.Errorf("UserByID(alice) = %+v, %v, want disabled", u, err)
		}
	}
	check(t)
	if _, err := db.RotateRefreshToken(ctx, hash("alice's token"), hash("next"), future); !errors.Is(err, store.ErrExpired) {
		t.Errorf("RotateRefreshToken(disabled user's token) error = %v, want ErrExpired", err)
	}

	before := dump(t, db)
	if err := db.DisableUser(ctx, alice.ID); err != nil {
		t.Errorf("second DisableUser() error = %v, want nil", err)
	}
	if after := dump(t, db); after != before {
		t.Errorf("rows after second DisableUser() =\n%s\nwant unchanged\n%s", after, before)
	}
	check(t)

	if err := db.DisableUser(ctx, store.NewID()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DisableUser(unknown) error = %v, want ErrNotFound", err)
	}
	if after := dump(t, db); after != before {
		t.Errorf("rows after DisableUser(unknown) =\n%s\nwant unchanged\n%s", after, before)
	}
}

func testPasswordHash(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	u := createUser(t, db, "a@example.com")
	other := createUser(t, db, "b@example.com")

	if got, err := db.PasswordHash(ctx, u.ID); err != nil || got != "hash-of-a@example.com" {
		t.Errorf("PasswordHash() = %q, %v, want %q", got, err, "hash-of-a@example.com")
	}
	if err := db.SetPasswordHash(ctx, u.ID, "$argon2id$new"); err != nil {
		t.Fatalf("SetPasswordHash() error = %v", err)
	}
	if got, err := db.PasswordHash(ctx, u.ID); err != nil || got != "$argon2id$new" {
		t.Errorf("PasswordHash() after set = %q, %v, want %q", got, err, "$argon2id$new")
	}
	if _, hash, _ := db.UserByEmail(ctx, "a@example.com"); hash != "$argon2id$new" {
		t.Errorf("UserByEmail() hash after set = %q, want %q", hash, "$argon2id$new")
	}
	if loaded, err := db.UserByID(ctx, u.ID); err != nil || !loaded.UpdateTime.After(u.UpdateTime) {
		t.Errorf("UpdateTime after set = %v, %v, want after %v", loaded.UpdateTime, err, u.UpdateTime)
	}
	if got, _ := db.PasswordHash(ctx, other.ID); got != "hash-of-b@example.com" {
		t.Errorf("PasswordHash(other user) = %q, want unchanged", got)
	}

	before := dump(t, db)
	tests := []struct {
		name    string
		call    func() error
		wantErr error // nil means any error
	}{
		{"get_unknown", func() error { _, err := db.PasswordHash(ctx, store.NewID()); return err }, store.ErrNotFound},
		{"set_unknown", func() error { return db.SetPasswordHash(ctx, store.NewID(), "h") }, store.ErrNotFound},
		{"set_empty", func() error { return db.SetPasswordHash(ctx, u.ID, "") }, nil},
		{"set_oversized", func() error { return db.SetPasswordHash(ctx, u.ID, strings.Repeat("h", 1025)) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if after := dump(t, db); after != before {
		t.Errorf("rows after refused calls =\n%s\nwant\n%s", after, before)
	}
}

func testSetUserRoles(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	u := createUser(t, db, "a@example.com", "member")
	other := createUser(t, db, "b@example.com", "admin")

	steps := []struct {
		name  string
		roles []string
		want  []string
	}{
		{"replace_and_dedupe", []string{"viewer", "admin", "viewer"}, []string{"admin", "viewer"}},
		{"same_again", []string{"admin", "viewer"}, []string{"admin", "viewer"}},
		{"none", nil, []string{}},
		{"back", []string{"member"}, []string{"member"}},
	}
	last := u
	for _, tt := range steps {
		got, err := db.SetUserRoles(ctx, u.ID, tt.roles)
		if err != nil {
			t.Fatalf("%s: SetUserRoles() error = %v", tt.name, err)
		}
		if got.Roles == nil || !slices.Equal(got.Roles, tt.want) {
			t.Errorf("%s: Roles = %#v, want %#v", tt.name, got.Roles, tt.want)
		}
		if !got.UpdateTime.After(last.UpdateTime) {
			t.Errorf("%s: UpdateTime = %v, want after %v", tt.name, got.UpdateTime, last.UpdateTime)
		}
		loaded, err := db.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(loaded, got) {
			t.Errorf("%s: UserByID() = %+v, want %+v", tt.name, loaded, got)
		}
		last = got
	}
	if loaded, _ := db.UserByID(ctx, other.ID); !slices.Equal(loaded.Roles, []string{"admin"}) {
		t.Errorf("other user's Roles = %v, want [admin]", loaded.Roles)
	}

	before := dump(t, db)
	tooMany := make([]string, 17)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("role", i)
	}
	invalid := []struct {
		name    string
		userID  string
		roles   []string
		wantErr error // nil means any error
	}{
		{"unknown_user", store.NewID(), []string{"admin"}, store.ErrNotFound},
		{"unknown_user_no_roles", store.NewID(), nil, store.ErrNotFound},
		{"too_many", u.ID, tooMany, nil},
		{"empty_role", u.ID, []string{"admin", ""}, nil},
		{"oversized_role", u.ID, []string{strings.Repeat("r", 257)}, nil},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.SetUserRoles(ctx, tt.userID, tt.roles)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("SetUserRoles() = %+v, %v, want error %v", got, err, tt.wantErr)
			}
		})
	}
	if after := dump(t, db); after != before {
		t.Errorf("rows after refused SetUserRoles calls =\n%s\nwant\n%s", after, before)
	}
}

func testAPIKeys(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	alice := createUser(t, db, "alice@example.com", "member")
	bob := createUser(t, db, "bob@example.com")
	expire := time.Date(2030, 6, 1, 0, 0, 0, 123_456_789, time.FixedZone("X", 3600))
	created := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

	full := store.APIKey{
		ID: store.NewID(), UserID: alice.ID, Name: "ci",
		Scopes: []string{"notes:write", "notes:read", "notes:write"}, Last4: "abcd",
		SecretHash: hash("secret"), CreateTime: created, ExpireTime: &expire,
	}
	if _, err := db.CreateAPIKey(ctx, full); err != nil {
		t.Fatalf("CreateAPIKey() error = %v", err)
	}
	wantExpire := expire.UTC().Truncate(time.Microsecond)
	want := full
	want.Scopes = []string{"notes:read", "notes:write"}
	want.ExpireTime = &wantExpire
	got := apiKeyState(t, db, full)
	if !reflect.DeepEqual(got.Key, want) {
		t.Errorf("APIKeyState().Key = %+v, want %+v", got.Key, want)
	}
	if got.Disabled || !slices.Equal(got.Roles, []string{"member"}) {
		t.Errorf("APIKeyState() disabled, roles = %v, %v, want false, [member]", got.Disabled, got.Roles)
	}

	bare := store.APIKey{ID: store.NewID(), UserID: alice.ID, SecretHash: hash("bare")}
	if _, err := db.CreateAPIKey(ctx, bare); err != nil {
		t.Fatalf("CreateAPIKey(bare) error = %v", err)
	}
	if got := apiKeyState(t, db, bare).Key; got.CreateTime.IsZero() || got.Scopes == nil || len(got.Scopes) != 0 {
		t.Errorf("APIKeyState(bare).Key = %+v, want create time filled in, no scopes", got)
	}
	revoked := createAPIKey(t, db, alice.ID, "revoked")
	bobs := createAPIKey(t, db, bob.ID, "bob's")

	t.Run("revoke_other_users_key", func(t *testing.T) {
		before := dump(t, db)
		if err := db.RevokeAPIKey(ctx, alice.ID, bobs.ID, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RevokeAPIKey(alice, bob's key) error = %v, want ErrNotFound", err)
		}
		if err := db.RevokeAPIKey(ctx, alice.ID, store.NewID(), ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RevokeAPIKey(alice, unknown) error = %v, want ErrNotFound", err)
		}
		if err := db.RevokeAPIKey(ctx, "", bobs.ID, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RevokeAPIKey(no user, bob's key) error = %v, want ErrNotFound", err)
		}
		if after := dump(t, db); after != before {
			t.Errorf("rows after refused RevokeAPIKey =\n%s\nwant\n%s", after, before)
		}
		if st := apiKeyState(t, db, bobs); st.Key.RevokeTime != nil {
			t.Errorf("bob's key RevokeTime = %v, want nil", st.Key.RevokeTime)
		}
	})

	t.Run("revoke_is_idempotent", func(t *testing.T) {
		if err := db.RevokeAPIKey(ctx, alice.ID, revoked.ID, ""); err != nil {
			t.Fatalf("RevokeAPIKey() error = %v", err)
		}
		first := apiKeyState(t, db, revoked).Key.RevokeTime
		if first == nil {
			t.Fatal("RevokeTime after RevokeAPIKey() = nil, want a time")
		}
		if err := db.RevokeAPIKey(ctx, alice.ID, revoked.ID, ""); err != nil {
			t.Errorf("second RevokeAPIKey() error = %v, want nil", err)
		}
		if again := apiKeyState(t, db, revoked).Key.RevokeTime; again == nil || !again.Equal(*first) {
			t.Errorf("RevokeTime after second revoke = %v, want %v", again, first)
		}
	})

	t.Run("list", func(t *testing.T) {
		keys, err := db.ListAPIKeys(ctx, alice.ID, "")
		if err != nil {
			t.Fatalf("ListAPIKeys() error = %v", err)
		}
		var ids []string
		for _, k := range keys {
			ids = append(ids, k.ID)
			if k.SecretHash != nil {
				t.Errorf("ListAPIKeys() key %q SecretHash = %x, want nil", k.ID, k.SecretHash)
			}
		}
		// bare was created at the clock's time in 2030-01-02, after full.
		if want := []string{bare.ID, full.ID}; !slices.Equal(ids, want) {
			t.Errorf("ListAPIKeys() ids = %v, want %v", ids, want)
		}
		if len(keys) == 2 {
			want := want
			want.SecretHash = nil
			if !reflect.DeepEqual(keys[1], want) {
				t.Errorf("ListAPIKeys()[1] = %+v, want %+v", keys[1], want)
			}
		}
		if none, err := db.ListAPIKeys(ctx, store.NewID(), ""); err != nil || len(none) != 0 {
			t.Errorf("ListAPIKeys(unknown user) = %v, %v, want none", none, err)
		}
	})

	t.Run("revoke_user_keys", func(t *testing.T) {
		n, err := db.RevokeUserAPIKeys(ctx, alice.ID)
		if err != nil || n != 2 {
			t.Errorf("RevokeUserAPIKeys() = %d, %v, want 2", n, err)
		}
		if n, err := db.RevokeUserAPIKeys(ctx, alice.ID); err != nil || n != 0 {
			t.Errorf("second RevokeUserAPIKeys() = %d, %v, want 0", n, err)
		}
		if keys, err := db.ListAPIKeys(ctx, alice.ID, ""); err != nil || len(keys) != 0 {
			t.Errorf("ListAPIKeys() after revoking all = %v, %v, want none", keys, err)
		}
		if st := apiKeyState(t, db, bobs); st.Key.RevokeTime != nil {
			t.Errorf("bob's key RevokeTime = %v, want nil", st.Key.RevokeTime)
		}
	})

	if _, err := db.APIKeyState(ctx, store.NewID(), full.SecretHash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("APIKeyState(unknown) error = %v, want ErrNotFound", err)
	}
	// A wrong secret reads exactly like an unknown id.
	if _, err := db.APIKeyState(ctx, full.ID, hash("not the secret")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("APIKeyState(wrong secret) error = %v, want ErrNotFound", err)
	}
}

func testCreateAPIKeyInvalid(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	u := createUser(t, db, "a@example.com")
	taken := createAPIKey(t, db, u.ID, "taken")
	before := dump(t, db)

	valid := func() store.APIKey {
		return store.APIKey{ID: store.NewID(), UserID: u.ID, Name: "n", Scopes: []string{"a"}, SecretHash: hash("s")}
	}
	tooMany := make([]string, 17)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("scope", i)
	}
	tests := []struct {
		name    string
		change  func(k *store.APIKey)
		wantErr error // nil means any error
	}{
		{"missing_user", func(k *store.APIKey) { k.UserID = store.NewID() }, store.ErrNotFound},
		{"id_taken", func(k *store.APIKey) { k.ID = taken.ID }, store.ErrConflict},
		{"empty_id", func(k *store.APIKey) { k.ID = "" }, nil},
		{"no_secret_hash", func(k *store.APIKey) { k.SecretHash = nil }, nil},
		{"oversized_secret_hash", func(k *store.APIKey) { k.SecretHash = bytes.Repeat([]byte{1}, 65) }, nil},
		{"oversized_name", func(k *store.APIKey) { k.Name = strings.Repeat("n", 257) }, nil},
		{"too_many_scopes", func(k *store.APIKey) { k.Scopes = tooMany }, nil},
		{"empty_scope", func(k *store.APIKey) { k.Scopes = []string{""} }, nil},
		{"oversized_scope", func(k *store.APIKey) { k.Scopes = []string{strings.Repeat("s", 257)} }, nil},
		// A scope with a space would be stored as two: "notes:read admin".
		{"scope_with_space", func(k *store.APIKey) { k.Scopes = []string{"notes:read admin"} }, nil},
		{"scope_with_newline", func(k *store.APIKey) { k.Scopes = []string{"a\nadmin"} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := valid()
			tt.change(&k)
			_, err := db.CreateAPIKey(t.Context(), k)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("CreateAPIKey() error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if after := dump(t, db); after != before {
		t.Errorf("rows after refused CreateAPIKey calls =\n%s\nwant\n%s", after, before)
	}

	// The limits themselves are accepted.
	k := valid()
	k.Name = strings.Repeat("n", 256)
	k.Scopes = append(slices.Clone(tooMany[:16]), tooMany[0])
	if _, err := db.CreateAPIKey(t.Context(), k); err != nil {
		t.Errorf("CreateAPIKey(at the limits) error = %v", err)
	}
}

func testRetireSigningKeys(t *testing.T, e engine) {
	t.Parallel()
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	retireAt := base.Add(time.Hour)
	longAgo, later := base.Add(-time.Hour), base.Add(48*time.Hour)
	key := func(id string, created time.Time, retire *time.Time) store.SigningKey {
		return store.SigningKey{ID: id, Algorithm: "EdDSA", Private: []byte(id + "-priv"), Public: []byte(id + "-pub"), CreateTime: created, RetireTime: retire}
	}
	soon := base.Add(30 * time.Minute)
	keys := []store.SigningKey{
		key("oldest", base.Add(-72*time.Hour), nil),
		key("older", base.Add(-48*time.Hour), nil),
		key("retired", base.Add(-96*time.Hour), &longAgo),
		key("retiring_soon", base.Add(-60*time.Hour), &soon),
		key("retiring_later", base.Add(-50*time.Hour), &later),
		key("newest", base.Add(-time.Hour), nil),
	}

	// retireTimes reads every key's retire time, retired or not.
	retireTimes := func(t *testing.T, db *store.DB) map[string]*time.Time {
		t.Helper()
		rows, err := store.SQL(db).QueryContext(t.Context(), "SELECT id, retire_time FROM signing_keys")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := make(map[string]*time.Time)
		for rows.Next() {
			var id string
			var us sql.NullInt64
			if err := rows.Scan(&id, &us); err != nil {
				t.Fatal(err)
			}
			if us.Valid {
				tm := time.UnixMicro(us.Int64).UTC()
				got[id] = &tm
			} else {
				got[id] = nil
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	}

	tests := []struct {
		name   string
		keepID string
		before time.Time
		want   int
		// wantRetire maps ids to their expected retire times; nil: never.
		wantRetire map[string]*time.Time
		wantErr    error
	}{
		{
			name: "keeps_newest", keepID: "newest", before: base, want: 3,
			wantRetire: map[string]*time.Time{
				"oldest": &retireAt, "older": &retireAt, "retired": &longAgo,
				"retiring_soon": &soon, "retiring_later": &retireAt, "newest": nil,
			},
		},
		{
			name: "before_spares_newer_keys", keepID: "newest", before: base.Add(-49 * time.Hour), want: 2,
			wantRetire: map[string]*time.Time{
				"oldest": &retireAt, "older": nil, "retired": &longAgo,
				"retiring_soon": &soon, "retiring_later": &retireAt, "newest": nil,
			},
		},
		{
			name: "keep_is_spared_even_if_old", keepID: "older", before: base, want: 3,
			wantRetire: map[string]*time.Time{
				"oldest": &retireAt, "older": nil, "retired": &longAgo,
				"retiring_soon": &soon, "retiring_later": &retireAt, "newest": &retireAt,
			},
		},
		{name: "unknown_keep", keepID: "missing", before: base, wantErr: store.ErrNotFound},
		{name: "retired_keep", keepID: "retired", before: base, wantErr: store.ErrNotFound},
		{name: "keep_retiring_before_at", keepID: "retiring_soon", before: base, wantErr: store.ErrNotFound},
		{name: "empty_keep", keepID: "", before: base, wantErr: store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := e.open(t)
			ctx := t.Context()
			for _, k := range keys {
				if err := db.CreateSigningKey(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			before := dump(t, db)
			got, err := db.RetireSigningKeys(ctx, tt.keepID, tt.before, retireAt)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("RetireSigningKeys() = %d, %v, want %v", got, err, tt.wantErr)
				}
				if after := dump(t, db); after != before {
					t.Errorf("rows after refused RetireSigningKeys =\n%s\nwant\n%s", after, before)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("RetireSigningKeys() = %d, %v, want %d", got, err, tt.want)
			}
			for id, g := range retireTimes(t, db) {
				w := tt.wantRetire[id]
				if (g == nil) != (w == nil) || (g != nil && !g.Equal(*w)) {
					t.Errorf("key %q retire time = %v, want %v", id, g, w)
				}
			}
			// Repeating the call changes nothing.
			if again, err := db.RetireSigningKeys(ctx, tt.keepID, tt.before, retireAt); err != nil || again != 0 {
				t.Errorf("second RetireSigningKeys() = %d, %v, want 0", again, err)
			}
			// The clock is past retireAt: the kept key is offered, the retired not.
			offered, err := db.SigningKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(offered, func(k store.SigningKey) bool { return k.ID == tt.keepID }) {
				t.Errorf("SigningKeys() does not offer the kept key %q", tt.keepID)
			}
			for _, k := range offered {
				if w := tt.wantRetire[k.ID]; w != nil && !w.After(retireAt) {
					t.Errorf("SigningKeys() offers %q, retired at %v", k.ID, w)
				}
			}
		})
	}
}

// TestAPIKeyLineage: a key minted with a key never outlives it, cannot be
// minted by a dead or foreign key, and ends with it.
func testAPIKeyLineage(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	alice := createUser(t, db, "alice@example.com", "member")
	bob := createUser(t, db, "bob@example.com", "member")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	store.SetNow(db, func() time.Time { return now })
	at := func(d time.Duration) *time.Time { tm := now.Add(d); return &tm }
	mint := func(parent string, expire *time.Time) (store.APIKey, error) {
		return db.CreateAPIKey(ctx, store.APIKey{
			ID: store.NewID(), UserID: alice.ID, SecretHash: hash(store.NewID()), ExpireTime: expire, ParentID: parent,
		})
	}
	must := func(t *testing.T, parent string, expire *time.Time) store.APIKey {
		t.Helper()
		k, err := mint(parent, expire)
		if err != nil {
			t.Fatalf("CreateAPIKey(parent %q) error = %v", parent, err)
		}
		return k
	}
	root := must(t, "", at(time.Minute))

	t.Run("child_expiry_cut_to_parent", func(t *testing.T) {
		t.Parallel()
		child := must(t, root.ID, at(365*24*time.Hour))
		if child.ExpireTime == nil || !child.ExpireTime.Equal(*root.ExpireTime) {
			t.Errorf("child ExpireTime = %v, want the parent's %v", child.ExpireTime, root.ExpireTime)
		}
		if got := apiKeyState(t, db, child).Key; got.ParentID != root.ID || !got.ExpireTime.Equal(*root.ExpireTime) {
			t.Errorf("stored child = parent %q, expiry %v; want %q, %v", got.ParentID, got.ExpireTime, root.ID, root.ExpireTime)
		}
		never := must(t, root.ID, nil)
		if never.ExpireTime == nil || !never.ExpireTime.Equal(*root.ExpireTime) {
			t.Errorf("child asking never to expire: ExpireTime = %v, want the parent's %v", never.ExpireTime, root.ExpireTime)
		}
		shorter := must(t, root.ID, at(time.Second))
		if !shorter.ExpireTime.Equal(*at(time.Second)) {
			t.Errorf("shorter child ExpireTime = %v, want its own %v", shorter.ExpireTime, at(time.Second))
		}
	})

	t.Run("refused_parents", func(t *testing.T) {
		t.Parallel()
		expired := must(t, "", at(-time.Second))
		revoked := must(t, "", at(time.Hour))
		if err := db.RevokeAPIKey(ctx, alice.ID, revoked.ID, ""); err != nil {
			t.Fatal(err)
		}
		bobs, err := db.CreateAPIKey(ctx, store.APIKey{ID: store.NewID(), UserID: bob.ID, SecretHash: hash("bob"), ExpireTime: at(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name, parent string
			want         error
		}{
			{"expired", expired.ID, store.ErrExpired},
			{"revoked", revoked.ID, store.ErrExpired},
			{"another_users", bobs.ID, store.ErrNotFound},
			{"missing", store.NewID(), store.ErrNotFound},
		} {
			if _, err := mint(tt.parent, at(time.Minute)); !errors.Is(err, tt.want) {
				t.Errorf("%s parent: CreateAPIKey() error = %v, want %v", tt.name, err, tt.want)
			}
		}
		// Sibling subtests mint in parallel: count only keys under these parents.
		var n int
		if err := store.RawSQL(db).QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys WHERE parent_id IN (?, ?, ?)`,
			expired.ID, revoked.ID, bobs.ID).Scan(&n); err != nil || n != 0 {
			t.Errorf("got %d keys minted under refused parents (%v), want 0", n, err)
		}
	})

	t.Run("revoke_cascades", func(t *testing.T) {
		t.Parallel()
		top := must(t, "", at(time.Hour))
		mid := must(t, top.ID, at(time.Hour))
		leaf := must(t, mid.ID, at(time.Hour))
		sibling := must(t, "", at(time.Hour))
		if err := db.RevokeAPIKey(ctx, alice.ID, top.ID, ""); err != nil {
			t.Fatal(err)
		}
		for _, k := range []store.APIKey{top, mid, leaf} {
			if apiKeyState(t, db, k).Key.RevokeTime == nil {
				t.Errorf("key %s not revoked with its ancestor", k.ID)
			}
		}
		if apiKeyState(t, db, sibling).Key.RevokeTime != nil {
			t.Error("an unrelated key was revoked")
		}
		// Revoking a middle key spares its parent.
		top2 := must(t, "", at(time.Hour))
		mid2 := must(t, top2.ID, at(time.Hour))
		if err := db.RevokeAPIKey(ctx, alice.ID, mid2.ID, ""); err != nil {
			t.Fatal(err)
		}
		if apiKeyState(t, db, top2).Key.RevokeTime != nil {
			t.Error("revoking a child revoked its parent")
		}
	})

	t.Run("key_manages_only_its_tree", func(t *testing.T) {
		t.Parallel()
		top := must(t, "", at(time.Hour))
		mid := must(t, top.ID, at(time.Hour))
		leaf := must(t, mid.ID, at(time.Hour))
		other := must(t, "", at(time.Hour))
		keys, err := db.ListAPIKeys(ctx, alice.ID, mid.ID)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
		slices.Sort(ids)
		want := []string{mid.ID, leaf.ID}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("ListAPIKeys(root mid) = %v, want mid and leaf %v", ids, want)
		}
		for _, outside := range []store.APIKey{top, other} {
			if err := db.RevokeAPIKey(ctx, alice.ID, outside.ID, mid.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("RevokeAPIKey(outside the tree, root mid) error = %v, want ErrNotFound", err)
			}
			if apiKeyState(t, db, outside).Key.RevokeTime != nil {
				t.Error("a key outside the tree was revoked")
			}
		}
		if err := db.RevokeAPIKey(ctx, alice.ID, leaf.ID, mid.ID); err != nil {
			t.Errorf("RevokeAPIKey(leaf, root mid) error = %v", err)
		}
		if err := db.RevokeAPIKey(ctx, alice.ID, mid.ID, mid.ID); err != nil {
			t.Errorf("RevokeAPIKey(itself) error = %v", err)
		}
		if apiKeyState(t, db, top).Key.RevokeTime != nil {
			t.Error("revoking within the tree revoked the root's parent")
		}
	})
}
