package store

import (
	"context"
	"database/sql"
	"time"
)

// SetNow replaces the clock of db. Call it before db is shared.
func SetNow(db *DB, now func() time.Time) { db.now = now }

// SQL returns the connection pool of db, for tests of one engine that
// inspect it behind the API's back.
func SQL(db *DB) *sql.DB { return db.sql }

// Raw runs queries behind the API's back, written as the store's are (with
// ? or @name parameters), on either engine: for tests that inspect or
// damage the database.
type Raw struct{ db *DB }

// RawSQL returns a Raw for db.
func RawSQL(db *DB) Raw { return Raw{db} }

func (r Raw) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return r.db.exec(ctx, q, args...)
}

func (r Raw) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return r.db.query(ctx, q, args...)
}

func (r Raw) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return r.db.queryRow(ctx, q, args...)
}

// Engine returns the name of db's engine: sqlite or postgres.
func Engine(db *DB) string { return db.eng.name }
