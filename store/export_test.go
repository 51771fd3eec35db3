package store

import (
	"database/sql"
	"time"
)

// SetNow replaces the clock of db. Call it before db is shared.
func SetNow(db *DB, now func() time.Time) { db.now = now }

// SQL returns the connection pool of db, for tests that inspect or damage
// the database behind the API's back.
func SQL(db *DB) *sql.DB { return db.sql }
