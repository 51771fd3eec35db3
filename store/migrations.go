package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
)

// migrationFiles holds the schema migrations of each engine, one SQL file
// per version, named NNNN_description.sql; both engines have the same
// versions. A migration, once released, is never edited: changes go in a
// new file with the next version, for both engines.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// migrationName is the required shape of a migration file name.
var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// migration is one versioned schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations in dir in version order.
func loadMigrations(dir string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %q: name does not match NNNN_name.sql", e.Name())
		}
		version, err := strconv.Atoi(m[1])
		if err != nil || version == 0 {
			return nil, fmt.Errorf("migration %q: invalid version", e.Name())
		}
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %q: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: version, name: e.Name(), sql: string(body)})
	}
	if len(ms) == 0 {
		return nil, errors.New("read migrations: none embedded")
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %q and %q: duplicate version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// migrate applies, in order, each migration not yet recorded in
// schema_migrations, all in one transaction. The transaction holds the
// database's write lock (SQLite) or an advisory lock on the schema
// (PostgreSQL) before it reads the record, so processes opening the same
// database at once apply every migration exactly once.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := loadMigrations(db.eng.migrations)
	if err != nil {
		return err
	}
	// At the default isolation, not SERIALIZABLE: on PostgreSQL, each
	// statement after the lock then sees what the lock's last holder
	// committed, where a serializable snapshot, taken before the lock was
	// granted, would not.
	return db.runTx(ctx, nil, func(tx txn) error {
		if db.eng.lockMigrations != "" {
			if _, err := tx.exec(ctx, db.eng.lockMigrations); err != nil {
				return fmt.Errorf("lock migrations: %w", err)
			}
		}
		if _, err := tx.exec(ctx, db.eng.createMigrations); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var latest sql.NullInt64
		if err := tx.queryRow(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&latest); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		// A database written by a newer binary may hold data this one
		// would misread; refuse it rather than guess.
		if known := ms[len(ms)-1].version; latest.Valid && int(latest.Int64) > known {
			return fmt.Errorf("schema version %d is newer than this binary's %d", latest.Int64, known)
		}
		for _, m := range ms {
			if latest.Valid && m.version <= int(latest.Int64) {
				continue
			}
			// Not rebound: a migration has no parameters, and its
			// comments may hold any character.
			if _, err := tx.tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("apply migration %q: %w", m.name, err)
			}
			if _, err := tx.exec(ctx, `INSERT INTO schema_migrations (version, apply_time) VALUES (?, ?)`,
				m.version, micros(db.timestamp())); err != nil {
				return fmt.Errorf("apply migration %q: %w", m.name, err)
			}
		}
		return nil
	})
}
