package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Session is a signed-in user's session.
type Session struct {
	ID           string
	UserID       string
	CreateTime   time.Time
	LastSeenTime time.Time
	ExpireTime   time.Time
	// RevokeTime is when the session was revoked, or nil if it was not.
	RevokeTime *time.Time
}

// CreateSession starts a session for userID that expires at expire. It
// returns an error matching [ErrNotFound] if the user does not exist.
func (db *DB) CreateSession(ctx context.Context, userID string, expire time.Time) (Session, error) {
	now := db.timestamp()
	s := Session{
		ID:           NewID(),
		UserID:       userID,
		CreateTime:   now,
		LastSeenTime: now,
		ExpireTime:   expire.UTC().Truncate(time.Microsecond),
	}
	_, err := db.sql.ExecContext(ctx,
		`INSERT INTO sessions (id, user_id, create_time, last_seen_time, expire_time)
		VALUES (?, ?, ?, ?, ?)`,
		s.ID, s.UserID, micros(now), micros(now), micros(s.ExpireTime))
	if err != nil {
		return Session{}, fmt.Errorf("create session for user %q: %w", userID, classify(err))
	}
	return s, nil
}

// Session returns the session with the given id, or an error matching
// [ErrNotFound]. It returns expired and revoked sessions too; the caller
// decides whether a session is still good.
func (db *DB) Session(ctx context.Context, id string) (Session, error) {
	var (
		s                        Session
		create, lastSeen, expire int64
		revoke                   sql.NullInt64
	)
	err := db.sql.QueryRowContext(ctx,
		`SELECT id, user_id, create_time, last_seen_time, expire_time, revoke_time
		FROM sessions WHERE id = ?`, id).
		Scan(&s.ID, &s.UserID, &create, &lastSeen, &expire, &revoke)
	if err != nil {
		return Session{}, fmt.Errorf("load session %q: %w", id, classify(err))
	}
	s.CreateTime = fromMicros(create)
	s.LastSeenTime = fromMicros(lastSeen)
	s.ExpireTime = fromMicros(expire)
	s.RevokeTime = fromNullMicros(revoke)
	return s, nil
}

// RevokeSession revokes a session. Revoking a revoked session keeps its
// first revoke time and succeeds. It returns an error matching
// [ErrNotFound] if the session does not exist.
func (db *DB) RevokeSession(ctx context.Context, id string) error {
	res, err := db.sql.ExecContext(ctx,
		`UPDATE sessions SET revoke_time = COALESCE(revoke_time, ?) WHERE id = ?`,
		micros(db.timestamp()), id)
	if err != nil {
		return fmt.Errorf("revoke session %q: %w", id, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("revoke session %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("revoke session %q: %w", id, ErrNotFound)
	}
	return nil
}
