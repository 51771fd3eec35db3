// Package store is the persistence of the guard service: users and their
// roles, sessions, API keys, notes and their shares, audit events, signing
// keys and server secrets, in SQLite (the default: one file) or PostgreSQL
// (shared by several replicas). Both behave the same; one test suite runs
// against each.
//
// On SQLite, a [DB] wraps one connection pool to one file in WAL mode with
// foreign keys enforced. Every write transaction takes the write lock up
// front (BEGIN IMMEDIATE), so concurrent writers queue on the busy timeout
// instead of failing halfway through with SQLITE_BUSY.
//
// On PostgreSQL, a [DB] wraps a pgx connection pool. Write transactions run
// at SERIALIZABLE isolation and are run again when PostgreSQL refuses one
// as not serializable, so that every read-then-write (refresh rotation,
// the first user, the first signing key, sharing a note) is as atomic
// across replicas as SQLite's serialized writers make it in one process.
//
// The schema is created and upgraded by [Open] from the migrations
// embedded in the binary, one set per engine with the same versions.
//
// Rows that do not exist are reported as [ErrNotFound] and unique-constraint
// violations as [ErrConflict]; test for them with [errors.Is]. Refresh token
// rotation adds [ErrReused] and [ErrExpired]. Times are kept as unix
// microseconds and returned in UTC.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

var (
	// ErrNotFound reports that the row asked for, or a row it refers to,
	// does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict reports that a write would violate a uniqueness
	// constraint, such as a second user with the same email.
	ErrConflict = errors.New("store: conflict")
	// ErrReused reports that a refresh token was presented after it had
	// been spent: a sign that it was copied. See [DB.RotateRefreshToken].
	ErrReused = errors.New("store: refresh token reused")
	// ErrExpired reports that a credential exists but may no longer be
	// used: it expired, or the session it belongs to was revoked or expired.
	ErrExpired = errors.New("store: expired")
)

// IDPattern is the regular expression every id made by [NewID] matches.
const IDPattern = "^[a-z2-7]{26}$"

// maxLimit bounds every list query, whatever the caller asks for.
const maxLimit = 1000

// Bounds on inputs. Callers validate earlier and with friendlier messages;
// these keep a caller's bug from filling the database.
const (
	// maxNameLen bounds names, roles, scopes and similar short strings, in bytes.
	maxNameLen = 256
	// maxScopes bounds the scopes of an API key and the roles of a user.
	maxScopes = 16
	// maxHashLen bounds the hashes of cookies, refresh tokens and API key
	// secrets: a SHA-512 digest fits.
	maxHashLen = 64
	// maxPasswordHashLen bounds encoded password hashes; an argon2id PHC
	// string is about 100 bytes.
	maxPasswordHashLen = 1024
)

// idEncoding is RFC 4648 base32 in lower case: ids stay readable in URLs and
// logs and cannot be mistaken for one another by case-insensitive tools.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a new random id: 128 bits from crypto/rand, encoded as 26
// characters of lower-case base32. Ids are opaque and reveal neither order
// nor count.
func NewID() string {
	var b [16]byte
	// Since Go 1.24 crypto/rand.Read never returns an error.
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// DB is a handle to the database. It is safe for concurrent use.
type DB struct {
	sql *sql.DB
	eng *engine
	// closePool, if not nil, closes what sql was opened from.
	closePool func()
	// now is the clock; tests in this package may replace it before use.
	now func() time.Time
}

// Open opens the database named by dsn and applies any migrations it lacks;
// opening a database that is already up to date changes nothing.
//
// A dsn starting postgres:// or postgresql:// is the URL of a PostgreSQL
// database, whose tables go in the first schema of its search_path (add
// ?search_path=name to choose one). Settings the URL leaves out, such as
// the password, come from the PG* environment variables as with psql.
//
// Any other dsn is the path of a SQLite file, created with its parent
// directory (mode 0700) if missing.
func Open(ctx context.Context, dsn string) (*DB, error) {
	if IsPostgres(dsn) {
		sqlDB, closePool, err := openPostgres(ctx, dsn)
		if err != nil {
			// The URL may hold a password: it stays out of the message.
			return nil, fmt.Errorf("open PostgreSQL database: %w", err)
		}
		db := &DB{sql: sqlDB, eng: postgresEngine, closePool: closePool, now: time.Now}
		if err := db.start(ctx); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open PostgreSQL database: %w", err)
		}
		return db, nil
	}
	return openSQLite(ctx, dsn)
}

// openSQLite opens the SQLite file at path.
func openSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	sqlDB, err := sql.Open("sqlite3", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	// Readers run in parallel under WAL; writers serialize on the database
	// lock whatever the pool size, waiting up to the busy timeout.
	conns := max(4, runtime.NumCPU()*2)
	sqlDB.SetMaxOpenConns(conns)
	sqlDB.SetMaxIdleConns(conns)
	db := &DB{sql: sqlDB, eng: sqliteEngine, now: time.Now}
	if err := db.start(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	return db, nil
}

// start checks that the database answers and migrates it.
func (db *DB) start(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return err
	}
	return db.migrate(ctx)
}

// dsn returns the go-sqlite3 data source name for the absolute path abs. The
// path is percent-encoded so that '?', '#' and '%' in it cannot be read as
// URI syntax.
func dsn(abs string) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter, as in file:///C:/data/guard.db
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", "5000")
	q.Set("_txlock", "immediate")
	// Every query text is a constant, so a small per-connection cache of
	// prepared statements skips SQLite's parse and plan on the hot reads
	// (about half the cost of a primary-key read).
	q.Set("_stmt_cache_size", "64")
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// Close closes the database. Calls in flight may fail.
func (db *DB) Close() error {
	err := db.sql.Close()
	if db.closePool != nil {
		db.closePool()
	}
	if err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// timestamp returns the current time at the precision it is stored with, so
// that values returned by a write equal those read back later.
func (db *DB) timestamp() time.Time {
	return db.now().UTC().Truncate(time.Microsecond)
}

// clampLimit bounds a page size to (0, maxLimit].
func clampLimit(limit int) int {
	if limit <= 0 || limit > maxLimit {
		return maxLimit
	}
	return limit
}

// micros converts t to its stored form.
func micros(t time.Time) int64 {
	return t.UnixMicro()
}

// fromMicros converts a stored time back to a UTC time.Time.
func fromMicros(us int64) time.Time {
	return time.UnixMicro(us).UTC()
}

// fromNullMicros converts a nullable stored time.
func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// nullMicros converts an optional time to its nullable stored form.
func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(*t), Valid: true}
}

// scanner is satisfied by *sql.Row and *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}
