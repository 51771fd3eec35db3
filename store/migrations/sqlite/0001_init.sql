-- Initial schema. Times are unix microseconds (UTC). Ids are store.NewID.

CREATE TABLE users (
	id            TEXT    NOT NULL PRIMARY KEY,
	email         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
	password_hash TEXT    NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	create_time   INTEGER NOT NULL,
	update_time   INTEGER NOT NULL
) STRICT;

CREATE TABLE user_roles (
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role    TEXT NOT NULL,
	PRIMARY KEY (user_id, role)
) STRICT;

CREATE TABLE sessions (
	id             TEXT    NOT NULL PRIMARY KEY,
	user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	create_time    INTEGER NOT NULL,
	last_seen_time INTEGER NOT NULL,
	expire_time    INTEGER NOT NULL,
	revoke_time    INTEGER NULL
) STRICT;

-- Foreign key columns are indexed so that cascading deletes do not scan.
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE refresh_tokens (
	token_hash  BLOB    NOT NULL PRIMARY KEY,
	session_id  TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	create_time INTEGER NOT NULL,
	expire_time INTEGER NOT NULL,
	spend_time  INTEGER NULL
) STRICT;

CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

CREATE TABLE api_keys (
	id            TEXT    NOT NULL PRIMARY KEY,
	user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name          TEXT    NOT NULL DEFAULT '',
	secret_hash   BLOB    NOT NULL,
	scopes        TEXT    NOT NULL, -- space separated
	last4         TEXT    NOT NULL DEFAULT '',
	create_time   INTEGER NOT NULL,
	expire_time   INTEGER NULL,
	last_use_time INTEGER NULL,
	revoke_time   INTEGER NULL
) STRICT;

CREATE INDEX api_keys_user_id ON api_keys (user_id);

CREATE TABLE notes (
	id          TEXT    NOT NULL PRIMARY KEY,
	owner_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	title       TEXT    NOT NULL,
	body        TEXT    NOT NULL,
	create_time INTEGER NOT NULL,
	update_time INTEGER NOT NULL
) STRICT;

-- Serves keyset pages of a user's notes, newest first.
CREATE INDEX notes_owner_id_create_time ON notes (owner_id, create_time DESC, id DESC);

CREATE TABLE note_shares (
	note_id    TEXT NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	permission TEXT NOT NULL CHECK (permission IN ('reader', 'writer')),
	PRIMARY KEY (note_id, user_id)
) STRICT;

CREATE INDEX note_shares_user_id ON note_shares (user_id);

-- Audit events outlive the users they name, so actor_id is not a foreign key.
CREATE TABLE audit_events (
	id         TEXT    NOT NULL PRIMARY KEY,
	time       INTEGER NOT NULL,
	actor_id   TEXT    NOT NULL, -- '' when unauthenticated
	procedure  TEXT    NOT NULL,
	code       TEXT    NOT NULL, -- 'ok' or a Connect code
	client_ip  TEXT    NOT NULL,
	request_id TEXT    NOT NULL,
	detail     TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_events_time ON audit_events (time, id);

CREATE TABLE signing_keys (
	id          TEXT    NOT NULL PRIMARY KEY,
	algorithm   TEXT    NOT NULL,
	private_key BLOB    NOT NULL,
	public_key  BLOB    NOT NULL,
	create_time INTEGER NOT NULL,
	retire_time INTEGER NULL
) STRICT;

CREATE TABLE secrets (
	name        TEXT    NOT NULL PRIMARY KEY,
	value       BLOB    NOT NULL,
	create_time INTEGER NOT NULL
) STRICT;
