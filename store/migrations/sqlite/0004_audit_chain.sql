-- The audit trail becomes typed and tamper-evident. seq orders the rows of
-- the hash chain (1, 2, 3, ... with no gaps); hash is SHA-256 of the
-- previous row's hash and this row's canonical encoding (store/audit.go,
-- auditEncoding). Rows written before this migration get a seq in time
-- order and no hash: they stay outside the chain. audit_anchor holds the
-- last row pruned by retention, so the chain verifies from the oldest kept
-- row.
ALTER TABLE audit_events ADD COLUMN seq INTEGER NULL;
ALTER TABLE audit_events ADD COLUMN type TEXT NOT NULL DEFAULT 'rpc';
ALTER TABLE audit_events ADD COLUMN subject_id TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_events ADD COLUMN hash BLOB NULL;

UPDATE audit_events SET seq = r.n
FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY time, id) AS n FROM audit_events) AS r
WHERE audit_events.id = r.id;

CREATE UNIQUE INDEX audit_events_seq ON audit_events (seq);

CREATE TABLE audit_anchor (
	id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL, -- the last pruned row's seq
	hash BLOB    NOT NULL  -- its hash (32 zero bytes if it had none)
) STRICT;
