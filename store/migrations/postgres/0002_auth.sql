-- Authentication: cookie sessions, as migrations/sqlite/0002_auth.sql.

-- cookie_hash is a hash of the session's cookie, computed by the caller so
-- that a copy of the database does not hold usable cookies. It is NULL for
-- sessions that authenticate with bearer tokens.
ALTER TABLE sessions ADD COLUMN cookie_hash BYTEA NULL;

-- Looks a cookie up on every request and makes two sessions with the same
-- cookie a conflict. Partial, so token sessions take no space in it.
CREATE UNIQUE INDEX sessions_cookie_hash ON sessions (cookie_hash) WHERE cookie_hash IS NOT NULL;
