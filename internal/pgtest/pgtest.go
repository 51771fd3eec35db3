// Package pgtest gives tests a PostgreSQL database: a schema of the test's
// own in the shared server at DefaultURL (or GUARD_TEST_POSTGRES), dropped
// with everything in it when the test ends.
//
// Without PostgreSQL, a test is skipped with a message saying how to start
// it, or fails when CI=true: CI must not pass by skipping.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the shared test PostgreSQL: trust authentication, database
// test. GUARD_TEST_POSTGRES replaces it.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// start is how to get a PostgreSQL for the tests, for the messages.
const start = `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:15` +
	` (or set GUARD_TEST_POSTGRES to the URL of a database the tests may create schemas in)`

// baseURL is the server and database the tests use.
func baseURL() string {
	if u := os.Getenv("GUARD_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultURL
}

// URL creates a schema no other test uses and returns a URL whose
// search_path is that schema, for store.Open or -db. The schema is dropped,
// with every table in it, when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	base := baseURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		unavailable(t, "no PostgreSQL at %s (%v): start one with `%s`", redact(base), err, start)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "guardtest_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err == nil {
			_, err = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			_ = conn.Close(ctx)
		}
		if err != nil {
			t.Errorf("drop the test's schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// unavailable skips the test because PostgreSQL is missing, or fails it
// when the environment says CI=true.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format+" (CI=true: failing instead of skipping)", args...)
	}
	t.Skipf(format, args...)
}

// redact returns raw with any password replaced, for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
