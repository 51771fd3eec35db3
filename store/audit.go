package store

import (
	"context"
	"fmt"
	"time"
)

// AuditEvent records one call to a procedure of the service.
type AuditEvent struct {
	ID   string
	Time time.Time
	// ActorID is the id of the calling user, or "" if unauthenticated.
	ActorID   string
	Procedure string
	// Code is "ok" or the Connect error code of the call.
	Code      string
	ClientIP  string
	RequestID string
	Detail    string
}

// RecordAuditEvent stores e, giving it a new id if e.ID is empty and the
// current time if e.Time is zero.
func (db *DB) RecordAuditEvent(ctx context.Context, e AuditEvent) error {
	if e.ID == "" {
		e.ID = NewID()
	}
	t := db.timestamp()
	if !e.Time.IsZero() {
		t = e.Time
	}
	_, err := db.exec(ctx,
		`INSERT INTO audit_events (id, time, actor_id, procedure, code, client_ip, request_id, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, micros(t), e.ActorID, e.Procedure, e.Code, e.ClientIP, e.RequestID, e.Detail)
	if err != nil {
		return fmt.Errorf("record audit event %q: %w", e.ID, classify(err))
	}
	return nil
}

// ListAuditEvents returns up to limit audit events, newest first. A limit
// outside 1 to 1000 means 1000.
func (db *DB) ListAuditEvents(ctx context.Context, limit int) ([]AuditEvent, error) {
	rows, err := db.query(ctx,
		`SELECT id, time, actor_id, procedure, code, client_ip, request_id, detail
		FROM audit_events
		ORDER BY time DESC, id DESC
		LIMIT ?`,
		clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	var events []AuditEvent
	for rows.Next() {
		var (
			e AuditEvent
			t int64
		)
		if err := rows.Scan(&e.ID, &t, &e.ActorID, &e.Procedure, &e.Code, &e.ClientIP, &e.RequestID, &e.Detail); err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		e.Time = fromMicros(t)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return events, nil
}
