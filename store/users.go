package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Role names a set of permissions, such as "admin", "member" or "viewer".
// The store keeps roles but does not interpret them.
type Role = string

// User is an account.
type User struct {
	ID    string
	Email string
	// Roles is sorted and free of duplicates.
	Roles      []string
	Disabled   bool
	CreateTime time.Time
	UpdateTime time.Time
}

// userColumns selects a user and, as a JSON array, its roles, so that a
// user and its roles are read in one statement and cannot disagree.
const userColumns = `u.id, u.email, u.password_hash, u.disabled, u.create_time, u.update_time, ` + rolesColumn

// rolesColumn selects the roles of the user u as a JSON array, [] for none.
// PostgreSQL spells json_group_array json_agg, which gives NULL for none.
const rolesColumn = `COALESCE((SELECT json_group_array(r.role ORDER BY r.role) FROM user_roles r WHERE r.user_id = u.id), '[]')`

// scanUser reads a row selected with userColumns.
func scanUser(s scanner) (User, string, error) {
	var (
		u              User
		hash           string
		create, update int64
		disabled       bool
		rolesJSON      string
	)
	if err := s.Scan(&u.ID, &u.Email, &hash, &disabled, &create, &update, &rolesJSON); err != nil {
		return User{}, "", err
	}
	roles, err := decodeRoles(rolesJSON)
	if err != nil {
		return User{}, "", err
	}
	u.Roles = roles
	u.Disabled = disabled
	u.CreateTime = fromMicros(create)
	u.UpdateTime = fromMicros(update)
	return u, hash, nil
}

// decodeRoles decodes roles selected as a JSON array, returning them
// sorted, free of duplicates and never nil.
func decodeRoles(rolesJSON string) ([]string, error) {
	var roles []string
	if err := json.Unmarshal([]byte(rolesJSON), &roles); err != nil {
		return nil, fmt.Errorf("decode roles: %w", err)
	}
	return sortedUnique(roles), nil
}

// checkNames returns an error unless names, such as roles or scopes, are at
// most maxScopes non-empty strings of at most maxNameLen bytes each.
func checkNames(what string, names []string) error {
	if len(names) > maxScopes {
		return fmt.Errorf("%d %ss, want at most %d", len(names), what, maxScopes)
	}
	for _, n := range names {
		if n == "" {
			return fmt.Errorf("empty %s", what)
		}
		if len(n) > maxNameLen {
			return fmt.Errorf("%s of %d bytes, want at most %d", what, len(n), maxNameLen)
		}
	}
	return nil
}

// sortedUnique returns a sorted copy of ss, such as roles or scopes,
// without duplicates and never nil.
func sortedUnique(ss []string) []string {
	out := slices.Clone(ss)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// CreateUser creates a user with the given email, password hash and roles.
// The email is stored as given; it must be unique regardless of case, else
// CreateUser returns an error matching [ErrConflict]. The user and its roles
// are written in one transaction.
func (db *DB) CreateUser(ctx context.Context, email, passwordHash string, roles []string) (User, error) {
	u := db.newUser(email, roles)
	err := db.inTx(ctx, func(tx txn) error { return insertUser(ctx, tx, u, passwordHash) })
	if err != nil {
		// The email stays out of the message: errors end up in logs.
		return User{}, fmt.Errorf("create user: %w", classify(err))
	}
	return u, nil
}

// CreateFirstUser creates a user as [DB.CreateUser] does, but only if there
// is no user yet, and reports whether it did. The check and the insert are
// one transaction, so when several processes start on an empty database
// at once, exactly one creates its user.
func (db *DB) CreateFirstUser(ctx context.Context, email, passwordHash string, roles []string) (User, bool, error) {
	u := db.newUser(email, roles)
	var created bool
	err := db.inTx(ctx, func(tx txn) error {
		created = false
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil || n > 0 {
			return err
		}
		created = true
		return insertUser(ctx, tx, u, passwordHash)
	})
	if err != nil {
		return User{}, false, fmt.Errorf("create first user: %w", classify(err))
	}
	if !created {
		return User{}, false, nil
	}
	return u, true, nil
}

// newUser returns a user, not yet stored, with a new id.
func (db *DB) newUser(email string, roles []string) User {
	now := db.timestamp()
	return User{
		ID:         NewID(),
		Email:      email,
		Roles:      sortedUnique(roles),
		CreateTime: now,
		UpdateTime: now,
	}
}

// insertUser writes u and its roles in tx.
func insertUser(ctx context.Context, tx txn, u User, passwordHash string) error {
	_, err := tx.exec(ctx,
		`INSERT INTO users (id, email, password_hash, disabled, create_time, update_time)
		VALUES (?, ?, ?, 0, ?, ?)`,
		u.ID, u.Email, passwordHash, micros(u.CreateTime), micros(u.UpdateTime))
	if err != nil {
		return err
	}
	for _, r := range u.Roles {
		if _, err := tx.exec(ctx, `INSERT INTO user_roles (user_id, role) VALUES (?, ?)`, u.ID, r); err != nil {
			return err
		}
	}
	return nil
}

// UserByID returns the user with the given id, or an error matching
// [ErrNotFound].
func (db *DB) UserByID(ctx context.Context, id string) (User, error) {
	row := db.queryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = ?`, id)
	u, _, err := scanUser(row)
	if err != nil {
		return User{}, fmt.Errorf("load user %q: %w", id, classify(err))
	}
	return u, nil
}

// UserByEmail returns the user with the given email, compared without
// regard to case, and its password hash, or an error matching [ErrNotFound].
func (db *DB) UserByEmail(ctx context.Context, email string) (User, string, error) {
	row := db.queryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.email = ?`, email)
	u, hash, err := scanUser(row)
	if err != nil {
		return User{}, "", fmt.Errorf("load user by email: %w", classify(err))
	}
	return u, hash, nil
}

// CountUsers returns the number of users.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := db.queryRow(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// ListUsers returns up to limit users with ids greater than afterID, in
// ascending id order; afterID "" starts from the beginning. A limit outside
// 1 to 1000 means 1000.
func (db *DB) ListUsers(ctx context.Context, afterID string, limit int) ([]User, error) {
	rows, err := db.query(ctx,
		`SELECT `+userColumns+` FROM users u WHERE u.id > ? ORDER BY u.id LIMIT ?`,
		afterID, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("list users after %q: %w", afterID, err)
	}
	defer rows.Close()
	var users []User
	for rows.Next() {
		u, _, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users after %q: %w", afterID, err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users after %q: %w", afterID, err)
	}
	return users, nil
}

// PasswordHash returns the password hash of the user userID, or an error
// matching [ErrNotFound].
func (db *DB) PasswordHash(ctx context.Context, userID string) (string, error) {
	var hash string
	err := db.queryRow(ctx, `SELECT password_hash FROM users WHERE id = ?`, userID).Scan(&hash)
	if err != nil {
		return "", fmt.Errorf("load password hash of user %q: %w", userID, classify(err))
	}
	return hash, nil
}

// SetPasswordHash replaces the password hash of the user userID and sets
// its update time. It does not end the user's sessions; callers that should
// do so call [DB.RevokeUserSessions]. It returns an error matching
// [ErrNotFound] if the user does not exist.
func (db *DB) SetPasswordHash(ctx context.Context, userID, hash string) error {
	// An empty hash could match an empty password in a careless verifier.
	if hash == "" || len(hash) > maxPasswordHashLen {
		return fmt.Errorf("set password hash of user %q: hash of %d bytes, want 1 to %d", userID, len(hash), maxPasswordHashLen)
	}
	res, err := db.exec(ctx,
		`UPDATE users SET password_hash = ?, update_time = ? WHERE id = ?`,
		hash, micros(db.timestamp()), userID)
	if err != nil {
		return fmt.Errorf("set password hash of user %q: %w", userID, classify(err))
	}
	if err := affected(res); err != nil {
		return fmt.Errorf("set password hash of user %q: %w", userID, err)
	}
	return nil
}

// SetUserRoles replaces the roles of the user userID with roles, less
// duplicates, sets its update time and returns the updated user, all in
// one transaction. At most 16 distinct roles of 1 to 256 bytes each are
// accepted. It returns an error matching [ErrNotFound] if the user does not
// exist.
func (db *DB) SetUserRoles(ctx context.Context, userID string, roles []string) (User, error) {
	roles = sortedUnique(roles)
	if err := checkNames("role", roles); err != nil {
		return User{}, fmt.Errorf("set roles of user %q: %w", userID, err)
	}
	var u User
	err := db.inTx(ctx, func(tx txn) error {
		res, err := tx.exec(ctx, `UPDATE users SET update_time = ? WHERE id = ?`, micros(db.timestamp()), userID)
		if err != nil {
			return err
		}
		if err := affected(res); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM user_roles WHERE user_id = ?`, userID); err != nil {
			return err
		}
		for _, r := range roles {
			if _, err := tx.exec(ctx, `INSERT INTO user_roles (user_id, role) VALUES (?, ?)`, userID, r); err != nil {
				return err
			}
		}
		u, _, err = scanUser(tx.queryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = ?`, userID))
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("set roles of user %q: %w", userID, classify(err))
	}
	return u, nil
}

// DisableUser disables the user userID and revokes all its sessions and
// API keys, in one transaction, so that every later check of the user,
// its sessions or its keys refuses. Disabling a disabled user succeeds and keeps
// the first revoke times. It returns an error matching [ErrNotFound] if the
// user does not exist.
func (db *DB) DisableUser(ctx context.Context, userID string) error {
	now := micros(db.timestamp())
	err := db.inTx(ctx, func(tx txn) error {
		// SET reads the old values: update_time moves only on the first call.
		res, err := tx.exec(ctx,
			`UPDATE users SET
				update_time = CASE disabled WHEN 0 THEN ? ELSE update_time END,
				disabled = 1
			WHERE id = ?`,
			now, userID)
		if err != nil {
			return err
		}
		if err := affected(res); err != nil {
			return err
		}
		if _, err := tx.exec(ctx,
			`UPDATE sessions SET revoke_time = ? WHERE user_id = ? AND revoke_time IS NULL`,
			now, userID); err != nil {
			return err
		}
		_, err = tx.exec(ctx,
			`UPDATE api_keys SET revoke_time = ? WHERE user_id = ? AND revoke_time IS NULL`,
			now, userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("disable user %q: %w", userID, classify(err))
	}
	return nil
}
