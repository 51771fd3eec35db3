package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
)

// APIKey is a long-lived credential a user creates for programs. The
// caller generates the secret and keeps only its hash here.
type APIKey struct {
	ID     string
	UserID string
	Name   string
	// Scopes limit what the key may do. They are stored space-separated and
	// returned sorted, free of duplicates and never nil.
	Scopes []string
	// Last4 is the end of the secret, shown to help the user tell keys apart.
	Last4 string
	// SecretHash is the SHA-256 of the secret, computed by the caller.
	SecretHash []byte
	CreateTime time.Time
	// ExpireTime is when the key stops working, or nil if never.
	ExpireTime *time.Time
	// LastUseTime is when the key was last used, or nil if never.
	LastUseTime *time.Time
	// RevokeTime is when the key was revoked, or nil if it was not.
	RevokeTime *time.Time
	// ParentID is the API key this key was minted with, or "" if a user's
	// session minted it. A key never outlives its parent.
	ParentID string
}

// apiKeyColumns are the columns scanAPIKey reads, from api_keys as k.
//
//nolint:gosec // G101 mistakes this column list for a credential.
const apiKeyColumns = `k.id, k.user_id, k.name, k.scopes, k.last4, k.secret_hash,
	k.create_time, k.expire_time, k.last_use_time, k.revoke_time, k.parent_id`

// scanAPIKey reads a row that starts with apiKeyColumns, scanning the
// columns after them into extra.
func scanAPIKey(sc scanner, extra ...any) (APIKey, error) {
	var (
		k                     APIKey
		scopes                string
		create                int64
		expire, used, revoked sql.NullInt64
		parent                sql.NullString
	)
	dest := append([]any{&k.ID, &k.UserID, &k.Name, &scopes, &k.Last4, &k.SecretHash,
		&create, &expire, &used, &revoked, &parent}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return APIKey{}, err
	}
	k.Scopes = sortedUnique(strings.Fields(scopes))
	k.CreateTime = fromMicros(create)
	k.ExpireTime = fromNullMicros(expire)
	k.LastUseTime = fromNullMicros(used)
	k.RevokeTime = fromNullMicros(revoked)
	k.ParentID = parent.String
	return k, nil
}

// CreateAPIKey stores k and returns it as stored. The caller chooses k.ID,
// normally with [NewID], which must be unique, else CreateAPIKey returns an
// error matching [ErrConflict]. A zero k.CreateTime means now. k.Name may
// have up to 256 bytes; k.Scopes up to 16 distinct scopes of 1 to 256 bytes
// without spaces. It returns an error matching [ErrNotFound] if the user
// does not exist.
//
// A key with a ParentID is minted with that key, which must be the same
// user's: its expiry is cut to the parent's, and it is refused with an
// error matching [ErrExpired] if the parent is revoked or expired, or
// [ErrNotFound] if the parent is missing or another user's. The check and
// the insert are one transaction, so a parent revoked meanwhile either
// refuses the child or revokes it with itself ([DB.RevokeAPIKey]).
func (db *DB) CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error) {
	if k.ID == "" {
		return APIKey{}, errors.New("create api key: empty id")
	}
	k.Scopes = sortedUnique(k.Scopes)
	if err := checkAPIKey(k, k.Scopes); err != nil {
		return APIKey{}, fmt.Errorf("create api key %q: %w", k.ID, err)
	}
	if k.CreateTime.IsZero() {
		k.CreateTime = db.timestamp()
	}
	k.CreateTime = k.CreateTime.UTC().Truncate(time.Microsecond)
	err := db.inTx(ctx, func(tx txn) error {
		if k.ParentID != "" {
			if err := clampToParent(ctx, tx, &k, db.timestamp()); err != nil {
				return err
			}
		}
		_, err := tx.exec(ctx,
			`INSERT INTO api_keys (id, user_id, name, secret_hash, scopes, last4,
				create_time, expire_time, last_use_time, revoke_time, parent_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.UserID, k.Name, k.SecretHash, strings.Join(k.Scopes, " "), k.Last4,
			micros(k.CreateTime), nullMicros(k.ExpireTime), nullMicros(k.LastUseTime), nullMicros(k.RevokeTime),
			sql.NullString{String: k.ParentID, Valid: k.ParentID != ""})
		return classify(err)
	})
	if err != nil {
		return APIKey{}, fmt.Errorf("create api key %q: %w", k.ID, err)
	}
	if k.ExpireTime != nil {
		t := k.ExpireTime.UTC().Truncate(time.Microsecond)
		k.ExpireTime = &t
	}
	return k, nil
}

// clampToParent checks, in tx, that k's parent is a live key of the same
// user, and cuts k's expiry to the parent's.
func clampToParent(ctx context.Context, tx txn, k *APIKey, now time.Time) error {
	var (
		owner           string
		expire, revoked sql.NullInt64
	)
	err := tx.queryRow(ctx, `SELECT user_id, expire_time, revoke_time FROM api_keys WHERE id = ?`, k.ParentID).
		Scan(&owner, &expire, &revoked)
	if err != nil {
		return fmt.Errorf("parent key %q: %w", k.ParentID, classify(err))
	}
	if owner != k.UserID {
		return fmt.Errorf("parent key %q is another user's: %w", k.ParentID, ErrNotFound)
	}
	parentExpire := fromNullMicros(expire)
	if revoked.Valid || parentExpire != nil && !now.Before(*parentExpire) {
		return fmt.Errorf("parent key %q: %w", k.ParentID, ErrExpired)
	}
	if parentExpire != nil && (k.ExpireTime == nil || k.ExpireTime.After(*parentExpire)) {
		k.ExpireTime = parentExpire
	}
	return nil
}

// checkAPIKey validates the fields of k other than its id, with scopes
// already sorted and free of duplicates.
func checkAPIKey(k APIKey, scopes []string) error {
	if err := checkHash("secret", k.SecretHash); err != nil {
		return err
	}
	if len(k.Name) > maxNameLen {
		return fmt.Errorf("name of %d bytes, want at most %d", len(k.Name), maxNameLen)
	}
	if len(k.Last4) > maxNameLen {
		return fmt.Errorf("last4 of %d bytes, want at most %d", len(k.Last4), maxNameLen)
	}
	if err := checkNames("scope", scopes); err != nil {
		return err
	}
	// Stored space-separated: a scope with a space would read back as two.
	if i := slices.IndexFunc(scopes, func(s string) bool { return strings.ContainsFunc(s, unicode.IsSpace) }); i >= 0 {
		return fmt.Errorf("scope %q contains a space", scopes[i])
	}
	return nil
}

// APIKeyState is what a request authenticated by an API key needs to know
// about it: the key and its owner's standing, read together.
type APIKeyState struct {
	// Key includes SecretHash, for the caller to compare.
	Key APIKey
	// Disabled reports whether the key's user is disabled.
	Disabled bool
	// Roles are the user's roles, sorted and free of duplicates.
	Roles []string
}

// APIKeyState returns the API key id whose secret hashes to secretHash,
// with its user's disabled flag and roles, read in one query so that they
// cannot disagree. A wrong secret and an unknown id alike return an error
// matching [ErrNotFound] after the same work, one primary-key lookup that
// finds no row, so response times do not tell which ids exist. (The
// comparison inside SQLite is not constant-time, but it compares SHA-256
// digests: timing reveals at most how much of a digest of the caller's own
// input matches, which says nothing about the secret.) It returns expired
// and revoked keys too; the caller decides whether a key is still good.
func (db *DB) APIKeyState(ctx context.Context, id string, secretHash []byte) (APIKeyState, error) {
	var (
		st        APIKeyState
		rolesJSON string
	)
	row := db.queryRow(ctx,
		`SELECT `+apiKeyColumns+`, u.disabled,
			`+rolesColumn+`
		FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE k.id = ? AND k.secret_hash = ?`, id, secretHash)
	k, err := scanAPIKey(row, &st.Disabled, &rolesJSON)
	if err != nil {
		return APIKeyState{}, fmt.Errorf("load state of api key %q: %w", id, classify(err))
	}
	roles, err := decodeRoles(rolesJSON)
	if err != nil {
		return APIKeyState{}, fmt.Errorf("load state of api key %q: %w", id, err)
	}
	st.Key, st.Roles = k, roles
	return st, nil
}

// keyScope is a recursive CTE naming the keys of @user that one key may
// manage: with @root "", all of them; else @root and every key minted
// through it, at any depth.
const keyScope = `scope (id) AS (
		SELECT id FROM api_keys WHERE user_id = @user AND (@root = '' OR id = @root)
		UNION
		SELECT k.id FROM api_keys k JOIN scope s ON k.parent_id = s.id
	)`

// ListAPIKeys returns the API keys of userID that are not revoked, expired
// ones included, newest first, up to 1000: all of them with root "", else
// only root and the keys minted through it. SecretHash is left nil: a list
// is for showing, never for checking.
func (db *DB) ListAPIKeys(ctx context.Context, userID, root string) ([]APIKey, error) {
	rows, err := db.query(ctx,
		`WITH RECURSIVE `+keyScope+`
		SELECT `+apiKeyColumns+` FROM api_keys k
		WHERE k.user_id = @user AND k.revoke_time IS NULL AND k.id IN (SELECT id FROM scope)
		ORDER BY k.create_time DESC, k.id DESC
		LIMIT @limit`,
		sql.Named("user", userID), sql.Named("root", root), sql.Named("limit", maxLimit))
	if err != nil {
		return nil, fmt.Errorf("list api keys of user %q: %w", userID, err)
	}
	defer rows.Close()
	var keys []APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list api keys of user %q: %w", userID, err)
		}
		k.SecretHash = nil
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api keys of user %q: %w", userID, err)
	}
	return keys, nil
}

// RevokeAPIKey revokes the API key id of userID and every key minted
// through it, at any depth. With a root other than "", id must be root or
// a key minted through it. Revoking a revoked key keeps its first revoke
// time and succeeds. It returns an error matching [ErrNotFound] if the key
// does not exist, belongs to another user or lies outside root; these
// cannot be told apart, so nobody learns of keys they may not manage.
func (db *DB) RevokeAPIKey(ctx context.Context, userID, id, root string) error {
	res, err := db.exec(ctx,
		`WITH RECURSIVE `+keyScope+`,
		tree (id) AS (
			SELECT id FROM api_keys WHERE id = @id AND user_id = @user AND id IN (SELECT id FROM scope)
			UNION
			SELECT k.id FROM api_keys k JOIN tree t ON k.parent_id = t.id
		)
		UPDATE api_keys SET revoke_time = COALESCE(revoke_time, @now) WHERE id IN (SELECT id FROM tree)`,
		sql.Named("id", id), sql.Named("user", userID), sql.Named("root", root), sql.Named("now", micros(db.timestamp())))
	if err != nil {
		return fmt.Errorf("revoke api key %q: %w", id, classify(err))
	}
	if err := affected(res); err != nil {
		return fmt.Errorf("revoke api key %q: %w", id, err)
	}
	return nil
}

// RevokeUserAPIKeys revokes every unrevoked API key of userID and returns
// how many it revoked: 0 for an unknown user.
func (db *DB) RevokeUserAPIKeys(ctx context.Context, userID string) (int, error) {
	res, err := db.exec(ctx,
		`UPDATE api_keys SET revoke_time = ? WHERE user_id = ? AND revoke_time IS NULL`,
		micros(db.timestamp()), userID)
	if err != nil {
		return 0, fmt.Errorf("revoke api keys of user %q: %w", userID, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("revoke api keys of user %q: %w", userID, err)
	}
	return int(n), nil
}

// TouchAPIKey records that the API key id was used at used. The last use
// time only moves forward, so requests finishing out of order cannot move
// it back. It returns an error matching [ErrNotFound] if the key does not
// exist.
func (db *DB) TouchAPIKey(ctx context.Context, id string, used time.Time) error {
	res, err := db.exec(ctx,
		`UPDATE api_keys SET last_use_time = CASE WHEN last_use_time IS NULL OR last_use_time < @used THEN @used ELSE last_use_time END
		WHERE id = @id`,
		sql.Named("used", micros(used)), sql.Named("id", id))
	if err != nil {
		return fmt.Errorf("touch api key %q: %w", id, classify(err))
	}
	if err := affected(res); err != nil {
		return fmt.Errorf("touch api key %q: %w", id, err)
	}
	return nil
}
