package store_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/connectguard/guard/store"
)

// replicas opens n handles on one new database of e: n replicas, each
// with a connection pool of its own.
func replicas(t *testing.T, e engine, n int) []*store.DB {
	t.Helper()
	dsn := e.dsn(t)
	dbs := make([]*store.DB, n)
	for i := range dbs {
		dbs[i] = e.reopen(t, dsn)
	}
	return dbs
}

// race runs fn(i, db) for i in [0, n) at once, spreading the calls over dbs.
func race(dbs []*store.DB, n int, fn func(i int, db *store.DB)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i, dbs[i%len(dbs)])
		})
	}
	close(start)
	wg.Wait()
}

func testCreateFirstUserRace(t *testing.T, e engine) {
	t.Parallel()
	dbs := replicas(t, e, 4)
	const callers = 12
	created := make([]bool, callers)
	errs := make([]error, callers)
	race(dbs, callers, func(i int, db *store.DB) {
		_, created[i], errs[i] = db.CreateFirstUser(t.Context(), fmt.Sprintf("admin%d@example.com", i), "h", []string{"admin"})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("CreateFirstUser() #%d error = %v", i, err)
		}
	}
	if n := countTrue(created); n != 1 {
		t.Errorf("CreateFirstUser() created %d users, want exactly 1", n)
	}
	if n := count(t, dbs[0], "users"); n != 1 {
		t.Errorf("users rows = %d, want 1", n)
	}
	// Once there is a user, it creates nothing.
	if _, ok, err := dbs[1].CreateFirstUser(t.Context(), "late@example.com", "h", nil); ok || err != nil {
		t.Errorf("CreateFirstUser() on a database with a user = %v, %v; want false, nil", ok, err)
	}
	if n := count(t, dbs[0], "users"); n != 1 {
		t.Errorf("users rows after a late call = %d, want 1", n)
	}
}

func testCreateFirstSigningKeyRace(t *testing.T, e engine) {
	t.Parallel()
	dbs := replicas(t, e, 4)
	const callers = 12
	created := make([]bool, callers)
	errs := make([]error, callers)
	race(dbs, callers, func(i int, db *store.DB) {
		k := store.SigningKey{ID: fmt.Sprint("k", i), Algorithm: "EdDSA", Private: []byte("private"), Public: []byte("public")}
		created[i], errs[i] = db.CreateFirstSigningKey(t.Context(), k)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("CreateFirstSigningKey() #%d error = %v", i, err)
		}
	}
	if n := countTrue(created); n != 1 {
		t.Errorf("CreateFirstSigningKey() created %d keys, want exactly 1", n)
	}
	keys, err := dbs[0].SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("SigningKeys() = %d keys, want 1", len(keys))
	}
	if want := fmt.Sprint("k", slices.Index(created, true)); keys[0].ID != want {
		t.Errorf("stored key = %q, want the creator's %q", keys[0].ID, want)
	}
}

// testShareNoteRace shares a note from several replicas at once, with
// different permissions, while another replica deletes it: no call fails
// other than with ErrNotFound, and no share outlives the note.
func testShareNoteRace(t *testing.T, e engine) {
	t.Parallel()
	dbs := replicas(t, e, 3)
	ctx := t.Context()
	owner := createUser(t, dbs[0], "owner@example.com")
	reader := createUser(t, dbs[0], "reader@example.com")

	n := createNote(t, dbs[0], owner.ID, "n")
	const callers = 16
	errs := make([]error, callers)
	race(dbs, callers, func(i int, db *store.DB) {
		p := store.PermissionRead
		if i%2 == 1 {
			p = store.PermissionWrite
		}
		errs[i] = db.ShareNote(ctx, n.ID, reader.ID, p)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("ShareNote() #%d error = %v", i, err)
		}
	}
	if got := count(t, dbs[0], "note_shares"); got != 1 {
		t.Errorf("note_shares rows after concurrent shares = %d, want 1", got)
	}

	gone := createNote(t, dbs[0], owner.ID, "gone")
	race(dbs, callers, func(i int, db *store.DB) {
		if i == 0 {
			errs[i] = db.DeleteNote(ctx, gone.ID)
			return
		}
		errs[i] = db.ShareNote(ctx, gone.ID, reader.ID, store.PermissionRead)
	})
	for i, err := range errs {
		if err != nil && (i == 0 || !errors.Is(err, store.ErrNotFound)) {
			t.Errorf("call #%d error = %v, want nil or (for shares) ErrNotFound", i, err)
		}
	}
	var orphans int
	if err := store.RawSQL(dbs[0]).QueryRowContext(ctx,
		`SELECT COUNT(*) FROM note_shares WHERE note_id = ?`, gone.ID).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("shares of the deleted note = %d, want 0", orphans)
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
