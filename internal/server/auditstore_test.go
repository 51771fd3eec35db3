package server

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/connectguard/guard/interceptors/audit"
	"github.com/connectguard/guard/store"
)

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "guard.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestAuditStoreAggregates: rate-limit hits write the first of each source
// at once and the rest as one counted row when the interval ends; other
// events are written one by one; the chain verifies.
func TestAuditStoreAggregates(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openStore(t)
	a := newAuditStore(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hit := func(actor, ip string) {
		t.Helper()
		e := audit.Event{Type: audit.TypeRateLimitHit, Time: time.Now(), ActorID: actor, Procedure: "/p", Code: "resource_exhausted", ClientIP: ip}
		if err := a.RecordAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 {
		hit("u1", "192.0.2.1")
	}
	hit("", "198.51.100.7")
	if err := a.RecordAudit(ctx, audit.Event{Type: audit.TypeRPC, Procedure: "/q", Code: "ok"}); err != nil {
		t.Fatal(err)
	}
	rows := func() []store.AuditEvent {
		t.Helper()
		got, err := db.ListAuditEvents(ctx, store.AuditFilter{Types: []string{string(audit.TypeRateLimitHit)}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := rows(); len(got) != 2 {
		t.Fatalf("rate_limit_hit rows before the interval ends = %d, want 2 (one per source)", len(got))
	}
	a.Close() // ends the interval
	got := rows()
	if len(got) != 3 || got[0].Count != 49 || got[0].ActorID != "u1" {
		t.Fatalf("rows after the interval = %+v, want a third with count 49 for u1", got)
	}
	if r, err := db.VerifyAudit(ctx); err != nil || !r.OK() || r.Rows != 4 {
		t.Errorf("VerifyAudit() = %v, %v; want OK with 4 rows", r, err)
	}
}

// TestPruneAudit: the server's retention loop prunes at start and the chain
// still verifies.
func TestPruneAudit(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	old := time.Now().Add(-48 * time.Hour)
	for i := range 3 {
		if err := db.RecordAuditEvent(t.Context(), store.AuditEvent{Time: old.Add(time.Duration(i) * time.Second), Procedure: "/old", Code: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.RecordAuditEvent(t.Context(), store.AuditEvent{Procedure: "/new", Code: "ok"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { pruneAudit(ctx, db, 24*time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil))); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := db.ListAuditEvents(t.Context(), store.AuditFilter{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 && got[0].Procedure == "/new" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rows after pruning = %+v, want only /new", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if r, err := db.VerifyAudit(t.Context()); err != nil || !r.OK() || r.Rows != 1 || r.AnchorSeq != 3 {
		t.Errorf("VerifyAudit() after pruning = %v, %v; want OK, 1 row from anchor seq 3", r, err)
	}
}
