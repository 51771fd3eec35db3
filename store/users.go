package store

import (
	"context"
	"database/sql"
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
const userColumns = `u.id, u.email, u.password_hash, u.disabled, u.create_time, u.update_time,
	(SELECT json_group_array(r.role ORDER BY r.role) FROM user_roles r WHERE r.user_id = u.id)`

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
	var roles []string
	if err := json.Unmarshal([]byte(rolesJSON), &roles); err != nil {
		return User{}, "", fmt.Errorf("decode roles: %w", err)
	}
	u.Roles = normalizeRoles(roles)
	u.Disabled = disabled
	u.CreateTime = fromMicros(create)
	u.UpdateTime = fromMicros(update)
	return u, hash, nil
}

// normalizeRoles returns a sorted copy of roles without duplicates, never nil.
func normalizeRoles(roles []string) []string {
	out := slices.Clone(roles)
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
	now := db.timestamp()
	u := User{
		ID:         NewID(),
		Email:      email,
		Roles:      normalizeRoles(roles),
		CreateTime: now,
		UpdateTime: now,
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO users (id, email, password_hash, disabled, create_time, update_time)
			VALUES (?, ?, ?, 0, ?, ?)`,
			u.ID, u.Email, passwordHash, micros(now), micros(now))
		if err != nil {
			return err
		}
		for _, r := range u.Roles {
			if _, err := tx.ExecContext(ctx, `INSERT INTO user_roles (user_id, role) VALUES (?, ?)`, u.ID, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// The email stays out of the message: errors end up in logs.
		return User{}, fmt.Errorf("create user: %w", classify(err))
	}
	return u, nil
}

// UserByID returns the user with the given id, or an error matching
// [ErrNotFound].
func (db *DB) UserByID(ctx context.Context, id string) (User, error) {
	row := db.sql.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = ?`, id)
	u, _, err := scanUser(row)
	if err != nil {
		return User{}, fmt.Errorf("load user %q: %w", id, classify(err))
	}
	return u, nil
}

// UserByEmail returns the user with the given email, compared without
// regard to case, and its password hash, or an error matching [ErrNotFound].
func (db *DB) UserByEmail(ctx context.Context, email string) (User, string, error) {
	row := db.sql.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users u WHERE u.email = ?`, email)
	u, hash, err := scanUser(row)
	if err != nil {
		return User{}, "", fmt.Errorf("load user by email: %w", classify(err))
	}
	return u, hash, nil
}

// CountUsers returns the number of users.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// ListUsers returns up to limit users with ids greater than afterID, in
// ascending id order; afterID "" starts from the beginning. A limit outside
// 1 to 1000 means 1000.
func (db *DB) ListUsers(ctx context.Context, afterID string, limit int) ([]User, error) {
	rows, err := db.sql.QueryContext(ctx,
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
