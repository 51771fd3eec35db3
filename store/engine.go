package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/mattn/go-sqlite3"
)

// engine is what differs between the two databases the store runs on.
// Queries are written once, in the SQL both accept, with ? or @name
// parameters; PostgreSQL gets them rewritten to $n by [engine.rebind].
type engine struct {
	name string
	// migrations is the directory of migrationFiles with this engine's
	// migrations; both directories hold the same versions.
	migrations string
	// createMigrations creates the schema_migrations table if missing.
	createMigrations string
	// lockMigrations, run first in the migration transaction, keeps
	// processes migrating the same database from racing; "" when beginning
	// the transaction already does.
	lockMigrations string
	// txOptions are those of every write transaction.
	txOptions *sql.TxOptions
	// postgres makes rebind translate queries.
	postgres bool
	// queries caches the translation of each query text. Query texts are
	// constants, so it stays small.
	queries sync.Map // string -> translated
}

var (
	// sqliteEngine serializes writers: every write transaction takes the
	// database's write lock when it begins (_txlock=immediate).
	sqliteEngine = &engine{
		name:       "sqlite",
		migrations: "migrations/sqlite",
		createMigrations: `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY,
	apply_time INTEGER NOT NULL
) STRICT`,
	}
	// postgresEngine runs write transactions at SERIALIZABLE isolation, so
	// that they behave as SQLite's serialized writers do: a transaction
	// that read what a concurrent one wrote fails with a serialization
	// error, and [DB.inTx] runs it again.
	postgresEngine = &engine{
		name:       "postgres",
		migrations: "migrations/postgres",
		createMigrations: `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY,
	apply_time BIGINT NOT NULL
)`,
		// One lock per schema: replicas starting together on one schema
		// queue, tests in schemas of their own do not.
		lockMigrations: `SELECT pg_advisory_xact_lock(hashtext('guard migrations ' || current_schema()))`,
		txOptions:      &sql.TxOptions{Isolation: sql.LevelSerializable},
		postgres:       true,
	}
)

// IsPostgres reports whether dsn names a PostgreSQL database, which
// servers on several machines can share, rather than a SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// openPostgres connects to the PostgreSQL database at the URL dsn through a
// pgx pool. Settings the URL leaves out come from the PG* environment
// variables (PGPASSWORD, PGSSLMODE, ...), as with psql.
func openPostgres(ctx context.Context, dsn string) (*sql.DB, func(), error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message quotes nothing of the URL, so no password leaks.
		return nil, nil, err
	}
	// Each database call fails rather than hang on a dead server.
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return stdlib.OpenDBFromPool(pool), pool.Close, nil
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
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", ErrConflict, err)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
	}
	return err
}

// retryable reports whether a transaction that failed with err may succeed
// if run again: PostgreSQL refused it to keep transactions serializable.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01") // serialization_failure, deadlock_detected
}

// translated is a query rewritten for PostgreSQL.
type translated struct {
	query string
	// names lists the @name parameters in $n order; nil when the query
	// has ? parameters.
	names []string
}

// rebind returns query and args as e takes them. For PostgreSQL, ? and
// @name become $1, $2, ... and named arguments become positional ones.
func (e *engine) rebind(query string, args []any) (string, []any) {
	if !e.postgres {
		return query, args
	}
	var tr translated
	if v, ok := e.queries.Load(query); ok {
		tr = v.(translated)
	} else {
		tr = translate(query)
		e.queries.Store(query, tr)
	}
	if tr.names == nil {
		return tr.query, args
	}
	byName := make(map[string]any, len(args))
	for _, a := range args {
		if na, ok := a.(sql.NamedArg); ok {
			byName[na.Name] = na.Value
		}
	}
	out := make([]any, len(tr.names))
	for i, n := range tr.names {
		v, ok := byName[n]
		if !ok {
			// Left for the server to refuse: a query is missing an
			// argument, a bug the tests of both engines catch.
			v = sql.NamedArg{Name: n}
		}
		out[i] = v
	}
	return tr.query, out
}

// translate rewrites a query from the dialect the store's queries are
// written in to PostgreSQL's: parameters ? and @name become $n (a name
// used twice gets one number), and SQLite's json_group_array is spelled
// json_agg. Text in single quotes is left alone.
func translate(query string) translated {
	var (
		b     strings.Builder
		tr    translated
		n     int
		index = map[string]int{}
	)
	const jsonGroupArray = "json_group_array("
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(query[i+1:], '\'')
			if j < 0 {
				j = len(query) - i - 1
			}
			b.WriteString(query[i : i+j+2])
			i += j + 1
		case c == '?':
			n++
			b.WriteString("$" + strconv.Itoa(n))
		case c == '@':
			j := i + 1
			for j < len(query) && (query[j] == '_' || 'a' <= query[j] && query[j] <= 'z' || 'A' <= query[j] && query[j] <= 'Z' || '0' <= query[j] && query[j] <= '9') {
				j++
			}
			name := query[i+1 : j]
			k, ok := index[name]
			if !ok {
				tr.names = append(tr.names, name)
				k = len(tr.names)
				index[name] = k
			}
			b.WriteString("$" + strconv.Itoa(k))
			i = j - 1
		case strings.HasPrefix(query[i:], jsonGroupArray):
			b.WriteString("json_agg(")
			i += len(jsonGroupArray) - 1
		default:
			b.WriteByte(c)
		}
	}
	tr.query = b.String()
	return tr
}

// txn is a write transaction, taking queries as [DB] does.
type txn struct {
	tx  *sql.Tx
	eng *engine
}

func (t txn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	query, args = t.eng.rebind(query, args)
	return t.tx.ExecContext(ctx, query, args...)
}

func (t txn) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	query, args = t.eng.rebind(query, args)
	return t.tx.QueryRowContext(ctx, query, args...)
}

func (db *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	query, args = db.eng.rebind(query, args)
	return db.sql.ExecContext(ctx, query, args...)
}

func (db *DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	query, args = db.eng.rebind(query, args)
	return db.sql.QueryContext(ctx, query, args...)
}

func (db *DB) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	query, args = db.eng.rebind(query, args)
	return db.sql.QueryRowContext(ctx, query, args...)
}

// maxTxAttempts bounds how often [DB.inTx] runs a transaction that
// PostgreSQL keeps refusing as not serializable.
const maxTxAttempts = 10

// inTx runs fn in a write transaction, committing if fn returns nil. A
// transaction PostgreSQL refuses as not serializable runs again, from the
// start, so fn must set everything it reports rather than add to it.
func (db *DB) inTx(ctx context.Context, fn func(txn) error) error {
	return db.runTx(ctx, db.eng.txOptions, fn)
}

// runTx runs fn in a transaction with options opts, as inTx describes.
func (db *DB) runTx(ctx context.Context, opts *sql.TxOptions, fn func(txn) error) error {
	for attempt := 1; ; attempt++ {
		err := db.tryTx(ctx, opts, fn)
		if err == nil || !retryable(err) || attempt == maxTxAttempts {
			return err
		}
		// A short pause, longer each time, lets the winner finish.
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		}
	}
}

func (db *DB) tryTx(ctx context.Context, opts *sql.TxOptions, fn func(txn) error) error {
	tx, err := db.sql.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(txn{tx: tx, eng: db.eng}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
