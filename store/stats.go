package store

import (
	"context"
	"fmt"
	"time"
)

// CountActiveSessions returns how many sessions are neither revoked nor
// past their absolute expiry at now. A cookie session idle past its
// timeout still counts until it is next presented (the idle timeout is
// the service's rule, not a column). It reads the whole table, so callers
// cache it (metrics read it at most every few seconds).
func (db *DB) CountActiveSessions(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := db.queryRow(ctx,
		`SELECT COUNT(*) FROM sessions WHERE revoke_time IS NULL AND expire_time > ?`, micros(now)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count active sessions: %w", classify(err))
	}
	return n, nil
}
