package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SigningKey is a key pair the service signs tokens with.
type SigningKey struct {
	ID        string
	Algorithm string
	Private   []byte
	Public    []byte
	// CreateTime orders keys: the newest unretired key signs.
	CreateTime time.Time
	// RetireTime is when the key stops being offered, or nil if never.
	RetireTime *time.Time
}

// CreateSigningKey stores k. The caller chooses k.ID, which must be unique,
// else CreateSigningKey returns an error matching [ErrConflict]. A zero
// k.CreateTime means now.
func (db *DB) CreateSigningKey(ctx context.Context, k SigningKey) error {
	err := db.inTx(ctx, func(tx txn) error { return insertSigningKey(ctx, tx, k, db.timestamp()) })
	if err != nil {
		return fmt.Errorf("create signing key %q: %w", k.ID, classify(err))
	}
	return nil
}

// insertSigningKey writes k in tx; a zero k.CreateTime means now.
func insertSigningKey(ctx context.Context, tx txn, k SigningKey, now time.Time) error {
	if k.ID == "" {
		return errors.New("empty id")
	}
	if len(k.Private) == 0 || len(k.Public) == 0 {
		return errors.New("empty key material")
	}
	create := k.CreateTime
	if create.IsZero() {
		create = now
	}
	_, err := tx.exec(ctx,
		`INSERT INTO signing_keys (id, algorithm, private_key, public_key, create_time, retire_time)
		VALUES (?, ?, ?, ?, ?, ?)`,
		k.ID, k.Algorithm, k.Private, k.Public, micros(create), nullMicros(k.RetireTime))
	return err
}

// CreateFirstSigningKey stores k, as [DB.CreateSigningKey] does, only if
// no key is offered yet (none, or all retired), and reports whether it did.
// The check and the insert are one transaction, so when several processes
// start on an empty database at once, exactly one stores its key; the
// others read it with [DB.SigningKeys].
func (db *DB) CreateFirstSigningKey(ctx context.Context, k SigningKey) (bool, error) {
	var created bool
	err := db.inTx(ctx, func(tx txn) error {
		created = false
		var n int
		if err := tx.queryRow(ctx,
			`SELECT COUNT(*) FROM signing_keys WHERE retire_time IS NULL OR retire_time > ?`,
			micros(db.timestamp())).Scan(&n); err != nil || n > 0 {
			return err
		}
		created = true
		return insertSigningKey(ctx, tx, k, db.timestamp())
	})
	if err != nil {
		return false, fmt.Errorf("create first signing key %q: %w", k.ID, classify(err))
	}
	return created, nil
}

// SigningKeys returns the keys not yet retired, newest first. A key with a
// retire time in the future is not yet retired.
func (db *DB) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, err := db.query(ctx,
		`SELECT id, algorithm, private_key, public_key, create_time, retire_time
		FROM signing_keys
		WHERE retire_time IS NULL OR retire_time > ?
		ORDER BY create_time DESC, id DESC`,
		micros(db.timestamp()))
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	defer rows.Close()
	var keys []SigningKey
	for rows.Next() {
		var (
			k      SigningKey
			create int64
			retire sql.NullInt64
		)
		// Scanning into *[]byte copies, so callers own the returned bytes.
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.Private, &k.Public, &create, &retire); err != nil {
			return nil, fmt.Errorf("list signing keys: %w", err)
		}
		k.CreateTime = fromMicros(create)
		k.RetireTime = fromNullMicros(retire)
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return keys, nil
}

// Secret returns the secret called name, first creating it from size random
// bytes if it does not exist. Concurrent callers, in this process or
// another, all get the value that was stored first. It returns an error if
// the stored secret does not have size bytes, rather than hand out a key of
// a strength the caller did not ask for.
func (db *DB) Secret(ctx context.Context, name string, size int) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("load secret %q: invalid size %d", name, size)
	}
	fresh := make([]byte, size)
	// Since Go 1.24 crypto/rand.Read never returns an error.
	_, _ = rand.Read(fresh)
	var value []byte
	err := db.inTx(ctx, func(tx txn) error {
		_, err := tx.exec(ctx,
			`INSERT INTO secrets (name, value, create_time) VALUES (?, ?, ?)
			ON CONFLICT (name) DO NOTHING`,
			name, fresh, micros(db.timestamp()))
		if err != nil {
			return err
		}
		return tx.queryRow(ctx, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&value)
	})
	if err != nil {
		return nil, fmt.Errorf("load secret %q: %w", name, classify(err))
	}
	if len(value) != size {
		return nil, fmt.Errorf("load secret %q: stored secret has %d bytes, want %d", name, len(value), size)
	}
	return value, nil
}

// RetireSigningKeys schedules the retirement at at of every key created
// before before, except keepID, the key that goes on signing. Keys already
// retired, or due to retire no later than at, are left alone, so a call
// never extends a key's life and repeating it changes nothing. It returns
// how many keys it changed, and an error matching [ErrNotFound], changing
// nothing, if keepID is not a key that is still offered at at: retiring
// around a missing key would leave none to sign with.
func (db *DB) RetireSigningKeys(ctx context.Context, keepID string, before, at time.Time) (int, error) {
	var n int64
	err := db.inTx(ctx, func(tx txn) error {
		var one int
		if err := tx.queryRow(ctx,
			`SELECT 1 FROM signing_keys WHERE id = ? AND (retire_time IS NULL OR retire_time > ?)`,
			keepID, micros(at)).Scan(&one); err != nil {
			return err
		}
		res, err := tx.exec(ctx,
			`UPDATE signing_keys SET retire_time = @at
			WHERE id <> @keep AND create_time < @before AND (retire_time IS NULL OR retire_time > @at)`,
			sql.Named("at", micros(at)), sql.Named("keep", keepID), sql.Named("before", micros(before)))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("retire signing keys other than %q: %w", keepID, classify(err))
	}
	return int(n), nil
}
