package store_test

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/connectguard/guard/internal/pgtest"
	"github.com/connectguard/guard/store"
)

// TestPostgresMigrations opens one new schema from several processes'
// worth of pools at once: the advisory lock lets exactly one migrate, and
// the others find the schema up to date.
func TestPostgresMigrations(t *testing.T) {
	t.Parallel()
	dsn := pgtest.URL(t)
	const openers = 6
	errs := make([]error, openers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range openers {
		wg.Go(func() {
			<-start
			db, err := store.Open(t.Context(), dsn)
			if err == nil {
				err = db.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open() #%d error = %v", i, err)
		}
	}
	db := openPath(t, dsn)
	if store.Engine(db) != "postgres" {
		t.Fatalf("engine = %s, want postgres", store.Engine(db))
	}
	got := versions(t, db)
	if want := []int{1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("schema_migrations versions = %v, want %v", got, want)
	}

	// A schema a newer binary wrote is refused, not misread.
	if _, err := store.RawSQL(db).ExecContext(t.Context(), "INSERT INTO schema_migrations VALUES (99, 0)"); err != nil {
		t.Fatal(err)
	}
	if db, err := store.Open(t.Context(), dsn); err == nil {
		_ = db.Close()
		t.Error("Open(schema of version 99) error = nil, want an error")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open(schema of version 99) error = %v, want it to say the schema is newer", err)
	}
}

// TestPostgresOpenErrors checks that a database that cannot be reached
// fails Open without the password in the message.
func TestPostgresOpenErrors(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"postgres://guard:sekrit-pw@127.0.0.1:1/test?connect_timeout=2", // nothing listens on port 1
		"postgres://guard:sekrit-pw@127.0.0.1:5432/test?sslmode=bogus",
	} {
		db, err := store.Open(t.Context(), dsn)
		if err == nil {
			_ = db.Close()
			t.Errorf("Open(%s) error = nil, want an error", pgtestRedacted(dsn))
			continue
		}
		if strings.Contains(err.Error(), "sekrit-pw") {
			t.Errorf("Open() error = %q, want it without the password", err)
		}
	}
}

func pgtestRedacted(dsn string) string { return strings.ReplaceAll(dsn, "sekrit-pw", "xxxxx") }
