-- Initial schema, as migrations/sqlite/0001_init.sql. Times are unix
-- microseconds (UTC). Ids are store.NewID. Text compares byte by byte
-- (COLLATE "C"), as in SQLite, so keyset pages come in the same order.

-- Emails are unique and looked up regardless of case. Guard's emails are
-- ASCII (the API validates them); this collation folds case in all of
-- Unicode, SQLite's NOCASE in ASCII only.
CREATE COLLATION guard_nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);

CREATE TABLE users (
	id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	email         TEXT COLLATE guard_nocase NOT NULL UNIQUE,
	password_hash TEXT    NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	create_time   BIGINT  NOT NULL,
	update_time   BIGINT  NOT NULL
);

CREATE TABLE user_roles (
	user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role    TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (user_id, role)
);

CREATE TABLE sessions (
	id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	user_id        TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	create_time    BIGINT NOT NULL,
	last_seen_time BIGINT NOT NULL,
	expire_time    BIGINT NOT NULL,
	revoke_time    BIGINT NULL
);

-- Foreign key columns are indexed so that cascading deletes do not scan.
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE refresh_tokens (
	token_hash  BYTEA  NOT NULL PRIMARY KEY,
	session_id  TEXT COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	create_time BIGINT NOT NULL,
	expire_time BIGINT NOT NULL,
	spend_time  BIGINT NULL
);

CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

CREATE TABLE api_keys (
	id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	user_id       TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name          TEXT   NOT NULL DEFAULT '',
	secret_hash   BYTEA  NOT NULL,
	scopes        TEXT   NOT NULL, -- space separated
	last4         TEXT   NOT NULL DEFAULT '',
	create_time   BIGINT NOT NULL,
	expire_time   BIGINT NULL,
	last_use_time BIGINT NULL,
	revoke_time   BIGINT NULL
);

CREATE INDEX api_keys_user_id ON api_keys (user_id);

CREATE TABLE notes (
	id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	owner_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	title       TEXT   NOT NULL,
	body        TEXT   NOT NULL,
	create_time BIGINT NOT NULL,
	update_time BIGINT NOT NULL
);

-- Serves keyset pages of a user's notes, newest first.
CREATE INDEX notes_owner_id_create_time ON notes (owner_id, create_time DESC, id DESC);

CREATE TABLE note_shares (
	note_id    TEXT COLLATE "C" NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
	user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	permission TEXT NOT NULL CHECK (permission IN ('reader', 'writer')),
	PRIMARY KEY (note_id, user_id)
);

CREATE INDEX note_shares_user_id ON note_shares (user_id);

-- Audit events outlive the users they name, so actor_id is not a foreign key.
CREATE TABLE audit_events (
	id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	time       BIGINT NOT NULL,
	actor_id   TEXT   NOT NULL, -- '' when unauthenticated
	procedure  TEXT   NOT NULL,
	code       TEXT   NOT NULL, -- 'ok' or a Connect code
	client_ip  TEXT   NOT NULL,
	request_id TEXT   NOT NULL,
	detail     TEXT   NOT NULL
);

CREATE INDEX audit_events_time ON audit_events (time, id);

CREATE TABLE signing_keys (
	id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	algorithm   TEXT   NOT NULL,
	private_key BYTEA  NOT NULL,
	public_key  BYTEA  NOT NULL,
	create_time BIGINT NOT NULL,
	retire_time BIGINT NULL
);

CREATE TABLE secrets (
	name        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	value       BYTEA  NOT NULL,
	create_time BIGINT NOT NULL
);
