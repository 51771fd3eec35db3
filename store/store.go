// Package store is the SQLite persistence of the guard service: users and
// their roles, sessions, API keys, notes and their shares, audit events,
// signing keys and server secrets.
//
// A [DB] wraps one connection pool to one SQLite file in WAL mode with
// foreign keys enforced. Every write transaction takes the write lock up
// front (BEGIN IMMEDIATE), so concurrent writers queue on the busy timeout
// instead of failing halfway through with SQLITE_BUSY. The schema is created
// and upgraded by [Open] from the migrations embedded in the binary.
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

	"github.com/mattn/go-sqlite3"
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

// DB is a handle to the SQLite database. It is safe for concurrent use.
type DB struct {
	sql *sql.DB
	// now is the clock; tests in this package may replace it before use.
	now func() time.Time
}

// Open opens the SQLite database at path, creating the file and its parent
// directory (mode 0700) if they are missing, and applies any migrations the
// database lacks. Opening a database that is already up to date changes
// nothing.
func Open(ctx context.Context, path string) (*DB, error) {
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
	db := &DB{sql: sqlDB, now: time.Now}
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	if err := db.migrate(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	return db, nil
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
	if err := db.sql.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// timestamp returns the current time at the precision it is stored with, so
// that values returned by a write equal those read back later.
func (db *DB) timestamp() time.Time {
	return db.now().UTC().Truncate(time.Microsecond)
}

// inTx runs fn in a write transaction, committing if fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// classify maps driver errors onto the package's sentinel errors, keeping
// the driver error in the chain for logs.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.ExtendedCode {
		case sqlite3.ErrConstraintUnique, sqlite3.ErrConstraintPrimaryKey:
			return fmt.Errorf("%w: %w", ErrConflict, err)
		case sqlite3.ErrConstraintForeignKey:
			// A row that refers to a missing row: the missing row is not found.
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
	}
	return err
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
