-- Authentication: cookie sessions. Refresh tokens, API keys and signing key
-- rotation need no schema change: 0001 already has their columns, and every
-- query they make is served by a primary key or an existing index:
--   refresh_tokens by token_hash (primary key),
--   sessions of a user by sessions_user_id,
--   api_keys by id (primary key) and of a user by api_keys_user_id,
--   signing_keys by a scan of a table of a handful of rows.

-- cookie_hash is a hash of the session's cookie, computed by the caller so
-- that a copy of the database does not hold usable cookies. It is NULL for
-- sessions that authenticate with bearer tokens, including every session
-- created before this migration.
ALTER TABLE sessions ADD COLUMN cookie_hash BLOB NULL;

-- Looks a cookie up on every request and makes two sessions with the same
-- cookie a conflict. Partial, so token sessions take no space in it; a
-- lookup by cookie_hash = ? implies IS NOT NULL, so it can use the index.
CREATE UNIQUE INDEX sessions_cookie_hash ON sessions (cookie_hash) WHERE cookie_hash IS NOT NULL;
