package store

import (
	"context"
	"database/sql"
	"errors"
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
	// Cookie is true for a session created with a cookie hash, which
	// authenticates with that cookie rather than with bearer tokens.
	Cookie bool
}

// sessionColumns are the columns scanSession reads, from sessions as s.
const sessionColumns = `s.id, s.user_id, s.create_time, s.last_seen_time, s.expire_time, s.revoke_time,
	s.cookie_hash IS NOT NULL`

// scanSession reads a row that starts with sessionColumns, scanning the
// columns after them into extra.
func scanSession(sc scanner, extra ...any) (Session, error) {
	var (
		s                        Session
		create, lastSeen, expire int64
		revoke                   sql.NullInt64
	)
	dest := append([]any{&s.ID, &s.UserID, &create, &lastSeen, &expire, &revoke, &s.Cookie}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return Session{}, err
	}
	s.CreateTime = fromMicros(create)
	s.LastSeenTime = fromMicros(lastSeen)
	s.ExpireTime = fromMicros(expire)
	s.RevokeTime = fromNullMicros(revoke)
	return s, nil
}

// checkHash returns an error unless h could be a hash the caller computed:
// an empty one would match every other empty one.
func checkHash(what string, h []byte) error {
	if len(h) == 0 {
		return fmt.Errorf("empty %s hash", what)
	}
	if len(h) > maxHashLen {
		return fmt.Errorf("%s hash of %d bytes, want at most %d", what, len(h), maxHashLen)
	}
	return nil
}

// CreateSession starts a session for userID that expires at expire. A
// cookie session passes the hash of its cookie, which must be unique, else
// CreateSession returns an error matching [ErrConflict]; a token session
// passes nil. It returns an error matching [ErrNotFound] if the user does
// not exist.
func (db *DB) CreateSession(ctx context.Context, userID string, expire time.Time, cookieHash []byte) (Session, error) {
	if cookieHash != nil {
		if err := checkHash("cookie", cookieHash); err != nil {
			return Session{}, fmt.Errorf("create session for user %q: %w", userID, err)
		}
	}
	now := db.timestamp()
	s := Session{
		ID:           NewID(),
		UserID:       userID,
		CreateTime:   now,
		LastSeenTime: now,
		ExpireTime:   expire.UTC().Truncate(time.Microsecond),
		Cookie:       cookieHash != nil,
	}
	// A nil []byte binds NULL.
	_, err := db.exec(ctx,
		`INSERT INTO sessions (id, user_id, create_time, last_seen_time, expire_time, cookie_hash)
		VALUES (?, ?, ?, ?, ?, ?)`,
		s.ID, s.UserID, micros(now), micros(now), micros(s.ExpireTime), cookieHash)
	if err != nil {
		return Session{}, fmt.Errorf("create session for user %q: %w", userID, classify(err))
	}
	return s, nil
}

// Session returns the session with the given id, or an error matching
// [ErrNotFound]. It returns expired and revoked sessions too; the caller
// decides whether a session is still good.
func (db *DB) Session(ctx context.Context, id string) (Session, error) {
	s, err := scanSession(db.queryRow(ctx, `SELECT `+sessionColumns+` FROM sessions s WHERE s.id = ?`, id))
	if err != nil {
		return Session{}, fmt.Errorf("load session %q: %w", id, classify(err))
	}
	return s, nil
}

// SessionByCookie returns the session created with cookieHash, or an error
// matching [ErrNotFound]. Like [DB.Session], it returns expired and revoked
// sessions too.
func (db *DB) SessionByCookie(ctx context.Context, cookieHash []byte) (Session, error) {
	if len(cookieHash) == 0 {
		// Token sessions have no cookie hash; none may be found by its absence.
		return Session{}, fmt.Errorf("load session by cookie: %w", ErrNotFound)
	}
	s, err := scanSession(db.queryRow(ctx,
		`SELECT `+sessionColumns+` FROM sessions s WHERE s.cookie_hash = ?`, cookieHash))
	if err != nil {
		// The hash stays out of the message: it is as good as the cookie
		// to anyone who can query the database.
		return Session{}, fmt.Errorf("load session by cookie: %w", classify(err))
	}
	return s, nil
}

// TouchSession records that the session was used at seen. The last seen
// time only moves forward, so requests finishing out of order cannot move
// it back. It returns an error matching [ErrNotFound] if the session does
// not exist.
func (db *DB) TouchSession(ctx context.Context, id string, seen time.Time) error {
	res, err := db.exec(ctx,
		`UPDATE sessions SET last_seen_time = CASE WHEN last_seen_time < @seen THEN @seen ELSE last_seen_time END
		WHERE id = @id`,
		sql.Named("seen", micros(seen)), sql.Named("id", id))
	if err != nil {
		return fmt.Errorf("touch session %q: %w", id, classify(err))
	}
	if err := affected(res); err != nil {
		return fmt.Errorf("touch session %q: %w", id, err)
	}
	return nil
}

// RevokeSession revokes a session. Revoking a revoked session keeps its
// first revoke time and succeeds. It returns an error matching
// [ErrNotFound] if the session does not exist.
func (db *DB) RevokeSession(ctx context.Context, id string) error {
	res, err := db.exec(ctx,
		`UPDATE sessions SET revoke_time = COALESCE(revoke_time, ?) WHERE id = ?`,
		micros(db.timestamp()), id)
	if err != nil {
		return fmt.Errorf("revoke session %q: %w", id, classify(err))
	}
	if err := affected(res); err != nil {
		return fmt.Errorf("revoke session %q: %w", id, err)
	}
	return nil
}

// RevokeUserSessions revokes every unrevoked session of userID except
// exceptID, typically the caller's own session; "" excepts none. It
// returns how many sessions it revoked: 0 for an unknown user.
func (db *DB) RevokeUserSessions(ctx context.Context, userID, exceptID string) (int, error) {
	res, err := db.exec(ctx,
		`UPDATE sessions SET revoke_time = ? WHERE user_id = ? AND revoke_time IS NULL AND id <> ?`,
		micros(db.timestamp()), userID, exceptID)
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of user %q: %w", userID, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of user %q: %w", userID, err)
	}
	return int(n), nil
}

// SessionState is what a request authenticated by a session needs to know
// about it: the session and its user's standing, read together.
type SessionState struct {
	Session Session
	// Disabled reports whether the session's user is disabled.
	Disabled bool
	// Roles are the user's roles, sorted and free of duplicates.
	Roles []string
}

// SessionState returns the session sessionID with its user's disabled flag
// and roles, read in one query so that they cannot disagree, or an error
// matching [ErrNotFound]. It returns expired and revoked sessions too.
func (db *DB) SessionState(ctx context.Context, sessionID string) (SessionState, error) {
	var (
		st        SessionState
		rolesJSON string
	)
	// Roles as a JSON array rather than group_concat: a role may hold any
	// character, including the separator.
	row := db.queryRow(ctx,
		`SELECT `+sessionColumns+`, u.disabled,
			`+rolesColumn+`
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = ?`, sessionID)
	s, err := scanSession(row, &st.Disabled, &rolesJSON)
	if err != nil {
		return SessionState{}, fmt.Errorf("load state of session %q: %w", sessionID, classify(err))
	}
	roles, err := decodeRoles(rolesJSON)
	if err != nil {
		return SessionState{}, fmt.Errorf("load state of session %q: %w", sessionID, err)
	}
	st.Session, st.Roles = s, roles
	return st, nil
}

// CreateRefreshToken stores the hash of a new refresh token for the session
// sessionID, expiring at expire. It returns an error matching [ErrNotFound]
// if the session does not exist and [ErrConflict] if the hash is taken.
func (db *DB) CreateRefreshToken(ctx context.Context, sessionID string, hash []byte, expire time.Time) error {
	if err := checkHash("refresh token", hash); err != nil {
		return fmt.Errorf("create refresh token for session %q: %w", sessionID, err)
	}
	_, err := db.exec(ctx,
		`INSERT INTO refresh_tokens (token_hash, session_id, create_time, expire_time) VALUES (?, ?, ?, ?)`,
		hash, sessionID, micros(db.timestamp()), micros(expire))
	if err != nil {
		return fmt.Errorf("create refresh token for session %q: %w", sessionID, classify(err))
	}
	return nil
}

// RotateRefreshToken spends the refresh token oldHash and stores newHash in
// its place, expiring at newExpire, for the same session. It returns the
// session, its last seen time moved to now.
//
// Everything happens in one write transaction, serialized with every other
// (the SQLite write lock, or PostgreSQL's SERIALIZABLE isolation and a
// retry), so of concurrent calls with the same token, in one process or
// several, exactly one succeeds and the others find it spent. Errors:
//
//   - [ErrNotFound]: oldHash is no token; nothing is written.
//   - [ErrReused]: oldHash was spent before. A spent token is presented by
//     someone who copied it, by its owner after the copier did, or by a
//     client that lost the answer to its own rotation; the store cannot tell
//     which, so it revokes the whole session in the same transaction. The
//     returned Session names it, for the caller's log.
//   - [ErrExpired]: the token expired, or its session was revoked or
//     expired; nothing is written.
//   - [ErrConflict]: newHash is taken; nothing is written.
//
// A spent token is reported as reused even when it or its session has
// expired since, so that every late copy is seen.
func (db *DB) RotateRefreshToken(ctx context.Context, oldHash, newHash []byte, newExpire time.Time) (Session, error) {
	if err := checkHash("refresh token", newHash); err != nil {
		return Session{}, fmt.Errorf("rotate refresh token: %w", err)
	}
	now := db.timestamp()
	var (
		s      Session
		reused bool // committed, unlike the errors fn returns
	)
	err := db.inTx(ctx, func(tx txn) error {
		var (
			expire int64
			spent  sql.NullInt64
			err    error
		)
		reused = false // a transaction run again starts afresh
		s, err = scanSession(tx.queryRow(ctx,
			`SELECT `+sessionColumns+`, t.expire_time, t.spend_time
			FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
			WHERE t.token_hash = ?`, oldHash),
			&expire, &spent)
		if err != nil {
			return err
		}
		switch {
		case spent.Valid:
			reused = true
			var revoke int64
			if err := tx.queryRow(ctx,
				`UPDATE sessions SET revoke_time = COALESCE(revoke_time, ?) WHERE id = ? RETURNING revoke_time`,
				micros(now), s.ID).Scan(&revoke); err != nil {
				return err
			}
			t := fromMicros(revoke)
			s.RevokeTime = &t
			return nil
		case expire <= micros(now), s.RevokeTime != nil, !now.Before(s.ExpireTime):
			return ErrExpired
		}
		res, err := tx.exec(ctx,
			`UPDATE refresh_tokens SET spend_time = ? WHERE token_hash = ? AND spend_time IS NULL`,
			micros(now), oldHash)
		if err != nil {
			return err
		}
		// Serialized transactions make this impossible; were they ever
		// not, this keeps two callers from both winning.
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return errors.New("token spent concurrently")
		}
		if _, err := tx.exec(ctx,
			`INSERT INTO refresh_tokens (token_hash, session_id, create_time, expire_time) VALUES (?, ?, ?, ?)`,
			newHash, s.ID, micros(now), micros(newExpire)); err != nil {
			return err
		}
		var lastSeen int64
		if err := tx.queryRow(ctx,
			`UPDATE sessions SET last_seen_time = CASE WHEN last_seen_time < @now THEN @now ELSE last_seen_time END
			WHERE id = @id RETURNING last_seen_time`,
			sql.Named("now", micros(now)), sql.Named("id", s.ID)).Scan(&lastSeen); err != nil {
			return err
		}
		s.LastSeenTime = fromMicros(lastSeen)
		return nil
	})
	switch {
	case err != nil && s.ID != "":
		// The token's session id is no secret; its hash stays out of logs.
		return Session{}, fmt.Errorf("rotate refresh token of session %q: %w", s.ID, classify(err))
	case err != nil:
		return Session{}, fmt.Errorf("rotate refresh token: %w", classify(err))
	case reused:
		return s, fmt.Errorf("rotate refresh token of session %q: %w", s.ID, ErrReused)
	}
	return s, nil
}

// affected returns [ErrNotFound] if res changed no row.
func affected(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
