package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The audit trail is a hash chain. Each row has a seq, one more than the
// row before it, and hash = SHA-256(previous row's hash || the row's
// canonical encoding, auditEncoding). The first row's previous hash is 32
// zero bytes, or, once retention has pruned rows, the hash of the last
// pruned row, kept in audit_anchor. Editing a row breaks its own hash;
// deleting one leaves a gap in seq and breaks the next row's hash;
// [DB.VerifyAudit] finds either and names the row.
//
// Appends are serialized, so the chain is linear with any number of
// writers: on SQLite the write transaction holds the database's write
// lock from its start; on PostgreSQL the transaction takes an advisory
// lock (one per schema, so every replica of a database queues on it) and
// reads the head at READ COMMITTED after the lock is granted, so it always
// sees the last committed row and never has to be run again. The cost is
// one lock, one indexed read of the last row and one insert per event,
// and audit writes of all replicas go one at a time.

// AuditEvent is one row of the audit trail.
type AuditEvent struct {
	ID string
	// Seq is the row's position in the chain, set by RecordAuditEvent.
	Seq  int64
	Time time.Time
	// Type is the event type, such as "rpc" or "login_failure"; "" means
	// "rpc".
	Type string
	// ActorID is the id of the user who acted, or "" if unknown.
	ActorID string
	// SubjectID is the id of the user acted upon, when not the actor.
	SubjectID string
	Procedure string
	// Code is "ok" or the Connect error code of the call.
	Code      string
	ClientIP  string
	RequestID string
	// Detail is for admins only: an internal reason, the object acted on.
	Detail string
	// Count is how many occurrences the row stands for; 0 means 1.
	Count int64
	// Hash is the row's chain hash, set by RecordAuditEvent; nil for rows
	// written before the chain existed.
	Hash []byte
}

// auditEncodingVersion starts every encoded row, so a later encoding
// cannot be mistaken for this one.
const auditEncodingVersion = "guard.audit.v1\x00"

// auditEncoding is the canonical encoding of e that its hash covers: the
// version, then seq, time (unix microseconds) and count as 8-byte
// big-endian integers, then each text field as a 4-byte big-endian length
// and its bytes, in a fixed order. Lengths make it unambiguous: no two
// different rows encode alike.
func auditEncoding(e AuditEvent) []byte {
	b := make([]byte, 0, 256)
	b = append(b, auditEncodingVersion...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(micros(e.Time)))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Count))
	for _, s := range []string{e.ID, e.Type, e.ActorID, e.SubjectID, e.Procedure, e.Code, e.ClientIP, e.RequestID, e.Detail} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// auditHash returns the chain hash of e following prev.
func auditHash(prev []byte, e AuditEvent) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(auditEncoding(e))
	return h.Sum(nil)
}

// genesis is the previous hash of the first row of a chain.
var genesis = make([]byte, sha256.Size)

// auditLock, run first in an audit transaction, serializes the audit
// writers of every process sharing the database; "" on SQLite, where the
// transaction holds the write lock from its start.
func (e *engine) auditLock() string {
	if e.postgres {
		return `SELECT pg_advisory_xact_lock(hashtext('guard audit ' || current_schema()))`
	}
	return ""
}

// auditTxOptions are those of the audit transactions: READ COMMITTED on
// PostgreSQL, so that each statement after the lock sees what the lock's
// last holder committed (a serializable snapshot taken before the lock
// would not, and the transaction would fail and run again).
func (e *engine) auditTxOptions() *sql.TxOptions {
	if e.postgres {
		return &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	return nil
}

// inAuditTx runs fn in a transaction holding the audit lock.
func (db *DB) inAuditTx(ctx context.Context, fn func(txn) error) error {
	return db.runTx(ctx, db.eng.auditTxOptions(), func(tx txn) error {
		if q := db.eng.auditLock(); q != "" {
			if _, err := tx.exec(ctx, q); err != nil {
				return fmt.Errorf("lock audit trail: %w", err)
			}
		}
		return fn(tx)
	})
}

// auditHead returns the seq and hash that the next row follows.
func auditHead(ctx context.Context, tx txn) (int64, []byte, error) {
	var (
		seq  sql.NullInt64
		hash []byte
	)
	err := tx.queryRow(ctx, `SELECT seq, hash FROM audit_events WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.queryRow(ctx, `SELECT seq, hash FROM audit_anchor WHERE id = 1`).Scan(&seq, &hash)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, genesis, nil
		}
	}
	if err != nil {
		return 0, nil, err
	}
	if hash == nil {
		hash = genesis // a row from before the chain
	}
	return seq.Int64, hash, nil
}

// RecordAuditEvent appends e to the audit trail, giving it a new id if
// e.ID is empty and the current time if e.Time is zero.
func (db *DB) RecordAuditEvent(ctx context.Context, e AuditEvent) error {
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.Time.IsZero() {
		e.Time = db.timestamp()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	if e.Type == "" {
		e.Type = "rpc"
	}
	if e.Count <= 0 {
		e.Count = 1
	}
	err := db.inAuditTx(ctx, func(tx txn) error {
		seq, prev, err := auditHead(ctx, tx)
		if err != nil {
			return err
		}
		e.Seq = seq + 1
		e.Hash = auditHash(prev, e)
		_, err = tx.exec(ctx,
			`INSERT INTO audit_events (id, seq, time, type, actor_id, subject_id, procedure, code, client_ip, request_id, detail, count, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, e.Seq, micros(e.Time), e.Type, e.ActorID, e.SubjectID, e.Procedure, e.Code, e.ClientIP, e.RequestID, e.Detail, e.Count, e.Hash)
		return err
	})
	if err != nil {
		return fmt.Errorf("record audit event %q: %w", e.ID, classify(err))
	}
	return nil
}

// AuditFilter selects audit events; zero fields select everything.
type AuditFilter struct {
	// Types keeps events of these types.
	Types []string
	// UserID keeps events whose actor or subject is this user.
	UserID    string
	Procedure string
	Code      string
	// Since keeps events at or after it, Until events before it.
	Since, Until time.Time
	// BeforeSeq keeps events older in the chain than this seq: the cursor
	// of the next page.
	BeforeSeq int64
}

const auditColumns = `id, seq, time, type, actor_id, subject_id, procedure, code, client_ip, request_id, detail, count, hash`

func scanAuditEvent(rows *sql.Rows) (AuditEvent, error) {
	var (
		e   AuditEvent
		seq sql.NullInt64
		t   int64
	)
	err := rows.Scan(&e.ID, &seq, &t, &e.Type, &e.ActorID, &e.SubjectID, &e.Procedure, &e.Code, &e.ClientIP, &e.RequestID, &e.Detail, &e.Count, &e.Hash)
	e.Seq = seq.Int64
	e.Time = fromMicros(t)
	return e, err
}

// ListAuditEvents returns up to limit audit events that f selects, newest
// (highest seq) first. A limit outside 1 to 1000 means 1000.
func (db *DB) ListAuditEvents(ctx context.Context, f AuditFilter, limit int) ([]AuditEvent, error) {
	var (
		where []string
		args  []any
	)
	if len(f.Types) > 0 {
		if len(f.Types) > maxScopes {
			return nil, fmt.Errorf("list audit events: %d types, at most %d", len(f.Types), maxScopes)
		}
		where = append(where, "type IN (?"+strings.Repeat(", ?", len(f.Types)-1)+")")
		for _, t := range f.Types {
			args = append(args, t)
		}
	}
	if f.UserID != "" {
		where = append(where, "(actor_id = ? OR subject_id = ?)")
		args = append(args, f.UserID, f.UserID)
	}
	if f.Procedure != "" {
		where = append(where, "procedure = ?")
		args = append(args, f.Procedure)
	}
	if f.Code != "" {
		where = append(where, "code = ?")
		args = append(args, f.Code)
	}
	if !f.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, micros(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "time < ?")
		args = append(args, micros(f.Until))
	}
	if f.BeforeSeq > 0 {
		where = append(where, "seq < ?")
		args = append(args, f.BeforeSeq)
	}
	q := `SELECT ` + auditColumns + ` FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, clampLimit(limit))
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	var events []AuditEvent
	for rows.Next() {
		e, err := scanAuditEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return events, nil
}

// AuditReport is what [DB.VerifyAudit] found.
type AuditReport struct {
	// Rows is the number of rows checked in the chain; Legacy the rows
	// written before the chain existed, which have no hash.
	Rows, Legacy int
	// AnchorSeq is the seq of the last pruned row, 0 if none was pruned.
	AnchorSeq int64
	// Head is the hash of the last row: record it elsewhere to detect
	// later rewriting of the whole chain or the loss of its newest rows.
	Head []byte
	// Bad is the first row that does not verify, nil if all do; Reason
	// says why.
	Bad    *AuditEvent
	Reason string
}

// OK reports whether the whole chain verified.
func (r AuditReport) OK() bool { return r.Bad == nil }

// String describes the report in one line.
func (r AuditReport) String() string {
	if r.Bad != nil {
		return fmt.Sprintf("audit trail BROKEN at row %s (seq %d, %s): %s",
			r.Bad.ID, r.Bad.Seq, r.Bad.Time.Format(time.RFC3339Nano), r.Reason)
	}
	s := fmt.Sprintf("audit trail OK: %d rows verified", r.Rows)
	if r.AnchorSeq > 0 {
		s += fmt.Sprintf(" from the retention anchor (seq %d)", r.AnchorSeq)
	}
	if r.Legacy > 0 {
		s += fmt.Sprintf(", %d older rows without a hash", r.Legacy)
	}
	return s + ", head " + hex.EncodeToString(r.Head)
}

// VerifyAudit walks the audit chain from its anchor to its head and
// reports the first row that does not verify: a row whose content was
// changed (its hash no longer matches), a row after a deleted one (a gap
// in seq, and a hash that no longer matches), a row without a hash after
// the chain began. It reads the rows in one pass, without locking writers
// out; rows appended meanwhile are checked if the pass reaches them.
func (db *DB) VerifyAudit(ctx context.Context) (AuditReport, error) {
	var r AuditReport
	prev := genesis
	var next int64 // the seq the next row must have; 0 when any
	var anchorSeq sql.NullInt64
	var anchorHash []byte
	err := db.queryRow(ctx, `SELECT seq, hash FROM audit_anchor WHERE id = 1`).Scan(&anchorSeq, &anchorHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return r, fmt.Errorf("verify audit trail: %w", err)
	default:
		r.AnchorSeq, prev, next = anchorSeq.Int64, anchorHash, anchorSeq.Int64+1
	}
	rows, err := db.query(ctx, `SELECT `+auditColumns+` FROM audit_events ORDER BY seq`)
	if err != nil {
		return r, fmt.Errorf("verify audit trail: %w", err)
	}
	defer rows.Close()
	chained := false
	for rows.Next() {
		e, err := scanAuditEvent(rows)
		if err != nil {
			return r, fmt.Errorf("verify audit trail: %w", err)
		}
		bad := func(reason string) (AuditReport, error) {
			r.Bad, r.Reason = &e, reason
			return r, nil
		}
		switch {
		case e.Seq == 0:
			return bad("the row has no place in the chain (no seq)")
		case next != 0 && e.Seq != next:
			return bad(fmt.Sprintf("seq %d follows seq %d: rows before it were deleted", e.Seq, next-1))
		}
		next = e.Seq + 1
		if e.Hash == nil {
			if chained {
				return bad("the row has no hash")
			}
			r.Legacy++
			continue
		}
		chained = true
		want := auditHash(prev, e)
		if !bytes.Equal(want, e.Hash) {
			return bad("its hash does not match its content and the row before it: the row was changed, or the row before it deleted")
		}
		prev = e.Hash
		r.Rows++
	}
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("verify audit trail: %w", err)
	}
	r.Head = prev
	return r, nil
}

// PruneAudit deletes the audit events older than before, and returns how
// many it deleted. It deletes a prefix of the chain: the rows up to the
// newest one older than before (an older row written after a newer one,
// by a slow writer, goes with that prefix). The hash of the last row
// deleted becomes the anchor the oldest kept row is verified from.
func (db *DB) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.inAuditTx(ctx, func(tx txn) error {
		var (
			seq  sql.NullInt64
			hash []byte
		)
		err := tx.queryRow(ctx, `SELECT seq, hash FROM audit_events WHERE time < ? AND seq IS NOT NULL ORDER BY seq DESC LIMIT 1`,
			micros(before)).Scan(&seq, &hash)
		if errors.Is(err, sql.ErrNoRows) {
			n = 0
			return nil
		}
		if err != nil {
			return err
		}
		if hash == nil {
			hash = genesis
		}
		res, err := tx.exec(ctx, `DELETE FROM audit_events WHERE seq <= ?`, seq.Int64)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.exec(ctx, `INSERT INTO audit_anchor (id, seq, hash) VALUES (1, ?, ?)
			ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, seq.Int64, hash)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune audit trail: %w", err)
	}
	return n, nil
}
