package store_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectguard/guard/store"
)

// clock is a fake time source that advances by step on every reading.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func newClock(step time.Duration) *clock {
	// Nanoseconds that are not whole microseconds check that stored and
	// returned times agree after truncation.
	return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 678_912_345, time.UTC), step: step}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

// openSQLite opens a SQLite database in a fresh directory with a clock
// that ticks one second per reading, and closes it when the test ends.
func openSQLite(t *testing.T) *store.DB {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "guard.db"))
}

// openPath opens the database dsn with a clock that ticks one second per
// reading, and closes it when the test ends.
func openPath(t *testing.T, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close() error = %v", err)
		}
	})
	store.SetNow(db, newClock(time.Second).Now)
	return db
}

func createUser(t *testing.T, db *store.DB, email string, roles ...string) store.User {
	t.Helper()
	u, err := db.CreateUser(t.Context(), email, "hash-of-"+email, roles)
	if err != nil {
		t.Fatalf("CreateUser(%q) error = %v", email, err)
	}
	return u
}

func createNote(t *testing.T, db *store.DB, ownerID, title string) store.Note {
	t.Helper()
	n, err := db.CreateNote(t.Context(), ownerID, title, "body of "+title)
	if err != nil {
		t.Fatalf("CreateNote(%q) error = %v", title, err)
	}
	return n
}

func share(t *testing.T, db *store.DB, noteID, userID string, p store.Permission) {
	t.Helper()
	if err := db.ShareNote(t.Context(), noteID, userID, p); err != nil {
		t.Fatalf("ShareNote(%q, %q, %v) error = %v", noteID, userID, p, err)
	}
}

// count returns the number of rows in table, read behind the API's back.
func count(t *testing.T, db *store.DB, table string) int {
	t.Helper()
	var n int
	// table is a constant of the test, never input.
	if err := store.RawSQL(db).QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func TestOpen(t *testing.T) {
	t.Parallel()

	t.Run("reopen_is_idempotent", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		path := filepath.Join(t.TempDir(), "guard.db")
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatalf("first Open() error = %v", err)
		}
		u, err := db.CreateUser(ctx, "a@example.com", "h", nil)
		if err != nil {
			t.Fatalf("CreateUser() error = %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close() error = %v", err)
		}
		db = openPath(t, path)
		if _, err := db.UserByID(ctx, u.ID); err != nil {
			t.Errorf("UserByID() after reopen error = %v", err)
		}

		files, err := filepath.Glob(filepath.Join("migrations", "sqlite", "*.sql"))
		if err != nil {
			t.Fatal(err)
		}
		var want []int
		for i := range files {
			want = append(want, i+1)
		}
		got := versions(t, db)
		if !slices.Equal(got, want) {
			t.Errorf("schema_migrations versions = %v, want %v", got, want)
		}
	})

	t.Run("concurrent_open_of_new_file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "guard.db")
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				db, err := store.Open(t.Context(), path)
				if err != nil {
					errs[i] = err
					return
				}
				errs[i] = db.Close()
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Open() #%d error = %v", i, err)
			}
		}
		db := openPath(t, path)
		if got := count(t, db, "schema_migrations"); got < 1 {
			t.Errorf("schema_migrations rows = %d, want at least 1", got)
		}
	})

	t.Run("creates_private_parent_directory", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "a", "b")
		openPath(t, filepath.Join(dir, "guard.db"))
		info, err := os.Stat(dir)
		if err != nil {
			t.Fatalf("Stat(%q) error = %v", dir, err)
		}
		if got := info.Mode().Perm() &^ 0o700; got != 0 {
			t.Errorf("directory permission bits beyond owner = %o, want 0", got)
		}
	})

	t.Run("path_with_uri_syntax", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		name := "odd ?name#x%20=y&.db"
		db := openPath(t, filepath.Join(dir, name))
		createUser(t, db, "a@example.com")
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("database file %q: %v", name, err)
		}
	})

	t.Run("empty_path", func(t *testing.T) {
		t.Parallel()
		if _, err := store.Open(t.Context(), ""); err == nil {
			t.Error(`Open("") error = nil, want an error`)
		}
	})
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	db := openSQLite(t)
	ctx := t.Context()
	// Hold several connections at once so each pragma is read on more than
	// one of them: connection settings must apply to every connection.
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
	}
	for i := range 3 {
		conn, err := store.SQL(db).Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		for _, tt := range tests {
			var got string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
			}
			if got != tt.want {
				t.Errorf("connection %d: PRAGMA %s = %q, want %q", i, tt.pragma, got, tt.want)
			}
		}
	}
}

func testDeleteUserCascades(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	alice := createUser(t, db, "alice@example.com", "member")
	bob := createUser(t, db, "bob@example.com")
	own := createNote(t, db, alice.ID, "alice's")
	bobs := createNote(t, db, bob.ID, "bob's")
	share(t, db, bobs.ID, alice.ID, store.PermissionRead)
	sess, err := db.CreateSession(ctx, alice.ID, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRefreshToken(ctx, sess.ID, []byte("refresh-hash"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateAPIKey(ctx, store.APIKey{ID: store.NewID(), UserID: alice.ID, SecretHash: []byte("secret-hash")}); err != nil {
		t.Fatal(err)
	}

	if _, err := store.RawSQL(db).ExecContext(ctx, "DELETE FROM users WHERE id = ?", alice.ID); err != nil {
		t.Fatalf("delete user: %v", err)
	}

	if _, err := db.Note(ctx, own.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Note(owned by deleted user) error = %v, want ErrNotFound", err)
	}
	for _, table := range []string{"user_roles", "sessions", "refresh_tokens", "api_keys", "note_shares"} {
		if got := count(t, db, table); got != 0 {
			t.Errorf("%s rows = %d, want 0", table, got)
		}
	}
	if _, err := db.Note(ctx, bobs.ID); err != nil {
		t.Errorf("Note(bob's) error = %v, want nil", err)
	}
}

func testCreateUser(t *testing.T, e engine) {
	t.Parallel()
	ctx := t.Context()

	t.Run("round_trip", func(t *testing.T) {
		t.Parallel()
		db := e.open(t)
		got := createUser(t, db, "Alice@Example.com", "member", "admin", "member")
		if want := []string{"admin", "member"}; !slices.Equal(got.Roles, want) {
			t.Errorf("Roles = %v, want %v", got.Roles, want)
		}
		if !regexp.MustCompile(store.IDPattern).MatchString(got.ID) {
			t.Errorf("ID = %q, want a match for %s", got.ID, store.IDPattern)
		}
		loaded, err := db.UserByID(ctx, got.ID)
		if err != nil {
			t.Fatalf("UserByID() error = %v", err)
		}
		if !reflect.DeepEqual(loaded, got) {
			t.Errorf("UserByID() = %+v, want %+v", loaded, got)
		}
		// The caller owns the slice it gets back.
		loaded.Roles[0] = "root"
		again, err := db.UserByID(ctx, got.ID)
		if err != nil {
			t.Fatal(err)
		}
		if again.Roles[0] != "admin" {
			t.Errorf("Roles[0] after caller's write = %q, want %q", again.Roles[0], "admin")
		}
	})

	t.Run("no_roles", func(t *testing.T) {
		t.Parallel()
		db := e.open(t)
		u := createUser(t, db, "a@example.com")
		loaded, err := db.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(loaded.Roles) != 0 {
			t.Errorf("Roles = %v, want none", loaded.Roles)
		}
	})

	duplicates := []struct {
		name  string
		email string
	}{
		{"same_case", "alice@example.com"},
		{"upper_case", "ALICE@EXAMPLE.COM"},
		{"mixed_case", "Alice@example.Com"},
	}
	for _, tt := range duplicates {
		t.Run("duplicate_"+tt.name, func(t *testing.T) {
			t.Parallel()
			db := e.open(t)
			createUser(t, db, "alice@example.com", "viewer")
			_, err := db.CreateUser(ctx, tt.email, "other", []string{"admin"})
			if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("CreateUser(%q) error = %v, want ErrConflict", tt.email, err)
			}
			if got, _ := db.CountUsers(ctx); got != 1 {
				t.Errorf("CountUsers() = %d, want 1", got)
			}
			if got := count(t, db, "user_roles"); got != 1 {
				t.Errorf("user_roles rows = %d, want 1 (the first user's)", got)
			}
		})
	}
}

func testUserByEmail(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	alice := createUser(t, db, "Alice@Example.com", "admin")

	tests := []struct {
		name    string
		email   string
		wantErr error
	}{
		{"as_stored", "Alice@Example.com", nil},
		{"lower_case", "alice@example.com", nil},
		{"upper_case", "ALICE@EXAMPLE.COM", nil},
		{"other_email", "bob@example.com", store.ErrNotFound},
		{"prefix", "alice@", store.ErrNotFound},
		{"like_wildcard", "%", store.ErrNotFound},
		{"empty", "", store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, hash, err := db.UserByEmail(ctx, tt.email)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("UserByEmail(%q) error = %v, want %v", tt.email, err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			if !reflect.DeepEqual(got, alice) {
				t.Errorf("UserByEmail(%q) = %+v, want %+v", tt.email, got, alice)
			}
			if want := "hash-of-Alice@Example.com"; hash != want {
				t.Errorf("UserByEmail(%q) hash = %q, want %q", tt.email, hash, want)
			}
		})
	}
}

func testUserByIDNotFound(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	if _, err := db.UserByID(t.Context(), store.NewID()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByID(unknown) error = %v, want ErrNotFound", err)
	}
}

func testListUsers(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	var want []string
	for i := range 5 {
		want = append(want, createUser(t, db, strings.Repeat("u", i+1)+"@example.com").ID)
	}
	slices.Sort(want)

	tests := []struct {
		name  string
		limit int
		pages []int
	}{
		{"by_two", 2, []int{2, 2, 1}},
		{"by_five", 5, []int{5, 0}},
		{"zero_means_max", 0, []int{5}},
		{"negative_means_max", -1, []int{5}},
		{"huge_means_max", 1 << 30, []int{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			var sizes []int
			after := ""
			for range len(tt.pages) {
				page, err := db.ListUsers(ctx, after, tt.limit)
				if err != nil {
					t.Fatalf("ListUsers(%q, %d) error = %v", after, tt.limit, err)
				}
				sizes = append(sizes, len(page))
				for _, u := range page {
					got = append(got, u.ID)
					after = u.ID
				}
			}
			if !slices.Equal(sizes, tt.pages) {
				t.Errorf("page sizes = %v, want %v", sizes, tt.pages)
			}
			if !slices.Equal(got, want) {
				t.Errorf("ids = %v, want %v", got, want)
			}
		})
	}
}

func testNoteAccess(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	owner := createUser(t, db, "owner@example.com")
	reader := createUser(t, db, "reader@example.com")
	writer := createUser(t, db, "writer@example.com")
	stranger := createUser(t, db, "stranger@example.com")
	note := createNote(t, db, owner.ID, "n")
	share(t, db, note.ID, reader.ID, store.PermissionRead)
	share(t, db, note.ID, writer.ID, store.PermissionWrite)

	tests := []struct {
		name    string
		noteID  string
		userID  string
		want    store.Permission
		wantErr error
	}{
		{"owner", note.ID, owner.ID, store.PermissionOwner, nil},
		{"reader", note.ID, reader.ID, store.PermissionRead, nil},
		{"writer", note.ID, writer.ID, store.PermissionWrite, nil},
		{"stranger", note.ID, stranger.ID, store.PermissionNone, nil},
		{"unknown_user", note.ID, store.NewID(), store.PermissionNone, nil},
		{"empty_user", note.ID, "", store.PermissionNone, nil},
		{"missing_note", store.NewID(), owner.ID, store.PermissionNone, store.ErrNotFound},
		{"note_id_injection", "' OR 1=1 --", owner.ID, store.PermissionNone, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, got, err := db.NoteAccess(ctx, tt.noteID, tt.userID)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("NoteAccess() error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("NoteAccess() = %v, want %v", got, tt.want)
			}
			if err == nil && n != note {
				t.Errorf("NoteAccess() note = %+v, want %+v", n, note)
			}
		})
	}
}

func testListReadableNotes(t *testing.T, e engine) {
	t.Parallel()

	tests := []struct {
		name string
		step time.Duration
	}{
		{"distinct_times", time.Second},
		// Equal creation times leave the order, and the cursor, to the ids.
		{"equal_times", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := e.open(t)
			ctx := t.Context()
			alice := createUser(t, db, "alice@example.com")
			bob := createUser(t, db, "bob@example.com")
			carol := createUser(t, db, "carol@example.com")
			store.SetNow(db, newClock(tt.step).Now)

			var want []store.Note
			for i := range 4 {
				want = append(want, createNote(t, db, alice.ID, "alice "+string(rune('a'+i))))
			}
			for i := range 3 {
				n := createNote(t, db, bob.ID, "bob shared "+string(rune('a'+i)))
				share(t, db, n.ID, alice.ID, []store.Permission{store.PermissionRead, store.PermissionWrite}[i%2])
				want = append(want, n)
			}
			createNote(t, db, bob.ID, "bob private")
			carols := createNote(t, db, carol.ID, "carol's, shared with bob")
			share(t, db, carols.ID, bob.ID, store.PermissionRead)
			// Sharing a note with its owner must not list it twice.
			share(t, db, want[0].ID, alice.ID, store.PermissionRead)

			slices.SortFunc(want, func(a, b store.Note) int {
				if c := b.CreateTime.Compare(a.CreateTime); c != 0 {
					return c
				}
				return strings.Compare(b.ID, a.ID)
			})

			var got []store.Note
			var sizes []int
			var cursor *store.NoteCursor
			for {
				page, err := db.ListReadableNotes(ctx, alice.ID, cursor, 3)
				if err != nil {
					t.Fatalf("ListReadableNotes(cursor %+v) error = %v", cursor, err)
				}
				sizes = append(sizes, len(page))
				got = append(got, page...)
				if len(page) < 3 || len(sizes) > 10 {
					break
				}
				last := page[len(page)-1]
				cursor = &store.NoteCursor{CreateTime: last.CreateTime, ID: last.ID}
			}
			if want := []int{3, 3, 1}; !slices.Equal(sizes, want) {
				t.Errorf("page sizes = %v, want %v", sizes, want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("notes =\n%v\nwant\n%v", titles(got), titles(want))
			}

			all, err := db.ListReadableNotes(ctx, alice.ID, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(all, want) {
				t.Errorf("one page with limit 0 =\n%v\nwant\n%v", titles(all), titles(want))
			}

			none, err := db.ListReadableNotes(ctx, store.NewID(), nil, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(none) != 0 {
				t.Errorf("notes of unknown user = %v, want none", titles(none))
			}
		})
	}
}

func titles(notes []store.Note) []string {
	var ts []string
	for _, n := range notes {
		ts = append(ts, n.Title)
	}
	return ts
}

func testUpdateNote(t *testing.T, e engine) {
	t.Parallel()
	ptr := func(s string) *string { return &s }

	tests := []struct {
		name      string
		title     *string
		body      *string
		wantTitle string
		wantBody  string
	}{
		{"title_only", ptr("new title"), nil, "new title", "old body"},
		{"body_only", nil, ptr("new body"), "old title", "new body"},
		{"both", ptr("new title"), ptr("new body"), "new title", "new body"},
		{"neither", nil, nil, "old title", "old body"},
		{"to_empty", ptr(""), ptr(""), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := e.open(t)
			ctx := t.Context()
			u := createUser(t, db, "a@example.com")
			n, err := db.CreateNote(ctx, u.ID, "old title", "old body")
			if err != nil {
				t.Fatal(err)
			}
			got, err := db.UpdateNote(ctx, n.ID, tt.title, tt.body)
			if err != nil {
				t.Fatalf("UpdateNote() error = %v", err)
			}
			if got.Title != tt.wantTitle || got.Body != tt.wantBody {
				t.Errorf("UpdateNote() title, body = %q, %q, want %q, %q", got.Title, got.Body, tt.wantTitle, tt.wantBody)
			}
			if !got.UpdateTime.After(n.UpdateTime) {
				t.Errorf("UpdateTime = %v, want after %v", got.UpdateTime, n.UpdateTime)
			}
			if !got.CreateTime.Equal(n.CreateTime) || got.OwnerID != n.OwnerID || got.ID != n.ID {
				t.Errorf("UpdateNote() = %+v, want id, owner and create time of %+v", got, n)
			}
			loaded, err := db.Note(ctx, n.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(loaded, got) {
				t.Errorf("Note() = %+v, want %+v", loaded, got)
			}
		})
	}

	t.Run("missing_note", func(t *testing.T) {
		t.Parallel()
		db := e.open(t)
		if _, err := db.UpdateNote(t.Context(), store.NewID(), ptr("x"), nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateNote(missing) error = %v, want ErrNotFound", err)
		}
		if got, _ := db.CountNotes(t.Context()); got != 0 {
			t.Errorf("CountNotes() = %d, want 0", got)
		}
	})
}

func testDeleteNote(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	owner := createUser(t, db, "owner@example.com")
	reader := createUser(t, db, "reader@example.com")
	doomed := createNote(t, db, owner.ID, "doomed")
	kept := createNote(t, db, owner.ID, "kept")
	share(t, db, doomed.ID, reader.ID, store.PermissionRead)
	share(t, db, kept.ID, reader.ID, store.PermissionRead)

	if err := db.DeleteNote(ctx, doomed.ID); err != nil {
		t.Fatalf("DeleteNote() error = %v", err)
	}
	if got := count(t, db, "note_shares"); got != 1 {
		t.Errorf("note_shares rows = %d, want 1", got)
	}
	if _, _, err := db.NoteAccess(ctx, doomed.ID, reader.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("NoteAccess(deleted) error = %v, want ErrNotFound", err)
	}
	if err := db.DeleteNote(ctx, doomed.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteNote() error = %v, want ErrNotFound", err)
	}
	if got, _ := db.CountNotes(ctx); got != 1 {
		t.Errorf("CountNotes() = %d, want 1", got)
	}
}

func testShareNote(t *testing.T, e engine) {
	t.Parallel()

	t.Run("upsert", func(t *testing.T) {
		t.Parallel()
		db := e.open(t)
		ctx := t.Context()
		owner := createUser(t, db, "owner@example.com")
		friend := createUser(t, db, "friend@example.com")
		n := createNote(t, db, owner.ID, "n")
		for _, p := range []store.Permission{store.PermissionRead, store.PermissionWrite, store.PermissionRead} {
			share(t, db, n.ID, friend.ID, p)
			_, got, err := db.NoteAccess(ctx, n.ID, friend.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got != p {
				t.Errorf("NoteAccess() after sharing %v = %v, want %v", p, got, p)
			}
		}
		if got := count(t, db, "note_shares"); got != 1 {
			t.Errorf("note_shares rows = %d, want 1", got)
		}
	})

	tests := []struct {
		name        string
		missingNote bool
		missingUser bool
		permission  store.Permission
		wantErr     error // nil means any error
	}{
		{name: "missing_user", missingUser: true, permission: store.PermissionRead, wantErr: store.ErrNotFound},
		{name: "missing_note", missingNote: true, permission: store.PermissionWrite, wantErr: store.ErrNotFound},
		{name: "permission_none", permission: store.PermissionNone},
		{name: "permission_owner", permission: store.PermissionOwner},
		{name: "permission_out_of_range", permission: store.Permission(42)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := e.open(t)
			ctx := t.Context()
			owner := createUser(t, db, "owner@example.com")
			friend := createUser(t, db, "friend@example.com")
			noteID, userID := createNote(t, db, owner.ID, "n").ID, friend.ID
			if tt.missingNote {
				noteID = store.NewID()
			}
			if tt.missingUser {
				userID = store.NewID()
			}
			err := db.ShareNote(ctx, noteID, userID, tt.permission)
			if err == nil {
				t.Fatal("ShareNote() error = nil, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("ShareNote() error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && errors.Is(err, store.ErrNotFound) {
				t.Errorf("ShareNote() error = %v, want an error other than ErrNotFound", err)
			}
			if got := count(t, db, "note_shares"); got != 0 {
				t.Errorf("note_shares rows = %d, want 0", got)
			}
		})
	}
}

func testCreateNoteMissingOwner(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	if _, err := db.CreateNote(t.Context(), store.NewID(), "t", "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateNote(missing owner) error = %v, want ErrNotFound", err)
	}
	if got, _ := db.CountNotes(t.Context()); got != 0 {
		t.Errorf("CountNotes() = %d, want 0", got)
	}
}

func testSecret(t *testing.T, e engine) {
	t.Parallel()

	t.Run("stable_across_calls_and_reopen", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		path := e.dsn(t)
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		first, err := db.Secret(ctx, "cookie", 32)
		if err != nil {
			t.Fatalf("Secret() error = %v", err)
		}
		if len(first) != 32 {
			t.Errorf("len(Secret()) = %d, want 32", len(first))
		}
		if bytes.Equal(first, make([]byte, 32)) {
			t.Error("Secret() is all zeros, want random bytes")
		}
		second, err := db.Secret(ctx, "cookie", 32)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(second, first) {
			t.Errorf("second Secret() = %x, want %x", second, first)
		}
		other, err := db.Secret(ctx, "csrf", 32)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(other, first) {
			t.Error("Secret(csrf) equals Secret(cookie), want independent secrets")
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = e.reopen(t, path)
		reopened, err := db.Secret(ctx, "cookie", 32)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(reopened, first) {
			t.Errorf("Secret() after reopen = %x, want %x", reopened, first)
		}
	})

	t.Run("concurrent_callers_agree", func(t *testing.T) {
		t.Parallel()
		db := e.open(t)
		got := make([][]byte, 8)
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() { got[i], errs[i] = db.Secret(t.Context(), "shared", 32) })
		}
		wg.Wait()
		for i := range got {
			if errs[i] != nil {
				t.Fatalf("Secret() #%d error = %v", i, errs[i])
			}
			if !bytes.Equal(got[i], got[0]) {
				t.Errorf("Secret() #%d = %x, want %x", i, got[i], got[0])
			}
		}
		if n := count(t, db, "secrets"); n != 1 {
			t.Errorf("secrets rows = %d, want 1", n)
		}
	})

	bad := []struct {
		name string
		size int
	}{
		{"zero_size", 0},
		{"negative_size", -1},
		{"size_differs_from_stored", 16},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := e.open(t)
			if _, err := db.Secret(t.Context(), "s", 32); err != nil {
				t.Fatal(err)
			}
			if got, err := db.Secret(t.Context(), "s", tt.size); err == nil {
				t.Errorf("Secret(size %d) = %x, want an error", tt.size, got)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	t.Parallel()
	pattern := regexp.MustCompile(store.IDPattern)
	seen := make(map[string]bool)
	for range 1000 {
		id := store.NewID()
		if !pattern.MatchString(id) {
			t.Fatalf("NewID() = %q, want a match for %s", id, store.IDPattern)
		}
		if seen[id] {
			t.Fatalf("NewID() = %q twice", id)
		}
		seen[id] = true
	}
}

func testInjectionStoredVerbatim(t *testing.T, e engine) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
	}{
		{"quote_drop_table", "x'); DROP TABLE users; --"},
		{"tautology", "' OR '1'='1"},
		{"double_quote", `" OR 1=1 --`},
		{"comment", "a@b.c/* */--"},
		{"union", "' UNION SELECT id, password_hash FROM users --"},
		{"named_parameter", "@user :note $id ?1"},
		{"like_wildcards", "%_%"},
		{"unicode", "ünïcødé ✓ 🔐"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := e.open(t)
			ctx := t.Context()
			victim := createUser(t, db, "victim@example.com")
			u := createUser(t, db, tt.input)
			got, _, err := db.UserByEmail(ctx, tt.input)
			if err != nil {
				t.Fatalf("UserByEmail(%q) error = %v", tt.input, err)
			}
			if got.Email != tt.input || got.ID != u.ID {
				t.Errorf("UserByEmail(%q) = %+v, want email stored verbatim on user %s", tt.input, got, u.ID)
			}
			n, err := db.CreateNote(ctx, u.ID, tt.input, tt.input)
			if err != nil {
				t.Fatalf("CreateNote() error = %v", err)
			}
			loaded, err := db.Note(ctx, n.ID)
			if err != nil {
				t.Fatal(err)
			}
			if loaded.Title != tt.input || loaded.Body != tt.input {
				t.Errorf("Note() title, body = %q, %q, want %q twice", loaded.Title, loaded.Body, tt.input)
			}
			if got, _ := db.CountUsers(ctx); got != 2 {
				t.Errorf("CountUsers() = %d, want 2", got)
			}
			if _, err := db.UserByID(ctx, victim.ID); err != nil {
				t.Errorf("UserByID(victim) error = %v", err)
			}
			if _, err := db.UserByID(ctx, tt.input); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("UserByID(%q) error = %v, want ErrNotFound", tt.input, err)
			}
		})
	}
}

func testAuditEvents(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	explicit := time.Date(2020, 5, 6, 7, 8, 9, 10_000, time.UTC)
	inputs := []store.AuditEvent{
		{ActorID: "", Procedure: "/guard.v1.AuthService/Login", Code: "unauthenticated", ClientIP: "192.0.2.1", RequestID: "r1", Detail: "bad password"},
		{ActorID: "u1", Procedure: "/guard.v1.NoteService/GetNote", Code: "ok", ClientIP: "192.0.2.2", RequestID: "r2"},
		{ID: "fixed-id", Time: explicit, ActorID: "u2", Procedure: "/p", Code: "permission_denied", ClientIP: "::1", RequestID: "r3", Detail: "'; DROP TABLE audit_events; --"},
	}
	for _, e := range inputs {
		if err := db.RecordAuditEvent(ctx, e); err != nil {
			t.Fatalf("RecordAuditEvent(%+v) error = %v", e, err)
		}
	}

	got, err := db.ListAuditEvents(ctx, store.AuditFilter{}, 0)
	if err != nil {
		t.Fatalf("ListAuditEvents() error = %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("len(ListAuditEvents()) = %d, want 3", len(got))
	}
	// Newest in the chain first, whatever the time says.
	wantRequests := []string{"r3", "r2", "r1"}
	pattern := regexp.MustCompile(store.IDPattern)
	for i, e := range got {
		if e.RequestID != wantRequests[i] {
			t.Errorf("event %d RequestID = %q, want %q", i, e.RequestID, wantRequests[i])
		}
		if e.Time.IsZero() {
			t.Errorf("event %d Time is zero, want filled in", i)
		}
		if e.RequestID != "r3" && !pattern.MatchString(e.ID) {
			t.Errorf("event %d ID = %q, want a match for %s", i, e.ID, store.IDPattern)
		}
	}
	want := inputs[2]
	want.Seq, want.Type, want.Count, want.Hash = 3, "rpc", 1, got[0].Hash
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("event with id and time = %+v, want %+v", got[0], want)
	}

	page, err := db.ListAuditEvents(ctx, store.AuditFilter{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(page, got[:2]) {
		t.Errorf("ListAuditEvents(2) = %+v, want %+v", page, got[:2])
	}
	if err := db.RecordAuditEvent(ctx, inputs[2]); !errors.Is(err, store.ErrConflict) {
		t.Errorf("RecordAuditEvent(same id) error = %v, want ErrConflict", err)
	}
}

func testSigningKeys(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	// The fake clock starts in 2030; these times are relative to it.
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	past, future := base.Add(-time.Hour), base.Add(100*24*time.Hour)
	keys := []store.SigningKey{
		{ID: "old", Algorithm: "EdDSA", Private: []byte("old-priv"), Public: []byte("old-pub"), CreateTime: base.Add(-48 * time.Hour)},
		{ID: "retired", Algorithm: "EdDSA", Private: []byte("r-priv"), Public: []byte("r-pub"), CreateTime: base.Add(-72 * time.Hour), RetireTime: &past},
		{ID: "retiring", Algorithm: "EdDSA", Private: []byte("g-priv"), Public: []byte("g-pub"), CreateTime: base.Add(-24 * time.Hour), RetireTime: &future},
		{ID: "new", Algorithm: "EdDSA", Private: []byte("new-priv"), Public: []byte("new-pub")},
	}
	for _, k := range keys {
		if err := db.CreateSigningKey(ctx, k); err != nil {
			t.Fatalf("CreateSigningKey(%q) error = %v", k.ID, err)
		}
	}

	got, err := db.SigningKeys(ctx)
	if err != nil {
		t.Fatalf("SigningKeys() error = %v", err)
	}
	var ids []string
	for _, k := range got {
		ids = append(ids, k.ID)
	}
	if want := []string{"new", "retiring", "old"}; !slices.Equal(ids, want) {
		t.Fatalf("SigningKeys() ids = %v, want %v", ids, want)
	}
	if got[0].CreateTime.IsZero() {
		t.Error("CreateTime of key created without one is zero, want filled in")
	}
	if !reflect.DeepEqual(got[1], keys[2]) {
		t.Errorf("SigningKeys()[1] = %+v, want %+v", got[1], keys[2])
	}

	// The caller owns the bytes it gets back.
	got[2].Private[0] = 'X'
	again, err := db.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again[2].Private, keys[0].Private) {
		t.Errorf("Private after caller's write = %q, want %q", again[2].Private, keys[0].Private)
	}

	invalid := []struct {
		name    string
		key     store.SigningKey
		wantErr error // nil means any error
	}{
		{"duplicate_id", keys[0], store.ErrConflict},
		{"empty_id", store.SigningKey{Algorithm: "EdDSA", Private: []byte("p"), Public: []byte("p")}, nil},
		{"empty_private", store.SigningKey{ID: "x", Algorithm: "EdDSA", Public: []byte("p")}, nil},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			err := db.CreateSigningKey(ctx, tt.key)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("CreateSigningKey() error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if n := count(t, db, "signing_keys"); n != len(keys) {
		t.Errorf("signing_keys rows = %d, want %d", n, len(keys))
	}
}

func testSessions(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	u := createUser(t, db, "a@example.com")
	expire := time.Date(2030, 2, 1, 0, 0, 0, 123_456_789, time.FixedZone("X", 3600))

	s, err := db.CreateSession(ctx, u.ID, expire, nil)
	if err != nil {
		t.Fatalf("CreateSession() error = %v", err)
	}
	if !s.ExpireTime.Equal(expire.Truncate(time.Microsecond)) || s.RevokeTime != nil || s.UserID != u.ID || s.Cookie {
		t.Errorf("CreateSession() = %+v, want user %s, expiry %v, not revoked, no cookie", s, u.ID, expire)
	}
	loaded, err := db.Session(ctx, s.ID)
	if err != nil {
		t.Fatalf("Session() error = %v", err)
	}
	if !reflect.DeepEqual(loaded, s) {
		t.Errorf("Session() = %+v, want %+v", loaded, s)
	}

	if err := db.RevokeSession(ctx, s.ID); err != nil {
		t.Fatalf("RevokeSession() error = %v", err)
	}
	revoked, err := db.Session(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if revoked.RevokeTime == nil {
		t.Fatal("RevokeTime after RevokeSession() = nil, want a time")
	}
	if err := db.RevokeSession(ctx, s.ID); err != nil {
		t.Errorf("second RevokeSession() error = %v, want nil", err)
	}
	again, err := db.Session(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.RevokeTime == nil || !again.RevokeTime.Equal(*revoked.RevokeTime) {
		t.Errorf("RevokeTime after second revoke = %v, want %v", again.RevokeTime, revoked.RevokeTime)
	}

	missing := []struct {
		name string
		call func() error
	}{
		{"session", func() error { _, err := db.Session(ctx, store.NewID()); return err }},
		{"revoke", func() error { return db.RevokeSession(ctx, store.NewID()) }},
		{"create_for_missing_user", func() error { _, err := db.CreateSession(ctx, store.NewID(), expire, nil); return err }},
	}
	for _, tt := range missing {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("error = %v, want ErrNotFound", err)
			}
		})
	}
	if n := count(t, db, "sessions"); n != 1 {
		t.Errorf("sessions rows = %d, want 1", n)
	}
}
