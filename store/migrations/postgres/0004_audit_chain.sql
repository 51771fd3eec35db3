-- The audit trail becomes typed and tamper-evident, as
-- migrations/sqlite/0004_audit_chain.sql.
ALTER TABLE audit_events ADD COLUMN seq BIGINT NULL;
ALTER TABLE audit_events ADD COLUMN type TEXT NOT NULL DEFAULT 'rpc';
ALTER TABLE audit_events ADD COLUMN subject_id TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_events ADD COLUMN hash BYTEA NULL;

UPDATE audit_events SET seq = r.n
FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY time, id) AS n FROM audit_events) AS r
WHERE audit_events.id = r.id;

CREATE UNIQUE INDEX audit_events_seq ON audit_events (seq);

CREATE TABLE audit_anchor (
	id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	seq  BIGINT  NOT NULL,
	hash BYTEA   NOT NULL
);
