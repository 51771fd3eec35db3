package store_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectguard/guard/store"
)

// appendEvents records n events with request ids r1..rn, one second
// apart from base, and returns them as stored, oldest first.
func appendEvents(t *testing.T, db *store.DB, base time.Time, n int) []store.AuditEvent {
	t.Helper()
	for i := 1; i <= n; i++ {
		e := store.AuditEvent{
			Time: base.Add(time.Duration(i) * time.Second), Type: "login_failure",
			ActorID: "", SubjectID: "u1", Procedure: "/guard.auth.v1.AuthService/Login",
			Code: "unauthenticated", ClientIP: "192.0.2.1", RequestID: fmt.Sprintf("r%d", i), Detail: "wrong password",
		}
		if err := db.RecordAuditEvent(t.Context(), e); err != nil {
			t.Fatalf("RecordAuditEvent(%d) error = %v", i, err)
		}
	}
	got, err := db.ListAuditEvents(t.Context(), store.AuditFilter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(got)
	return got
}

func verify(t *testing.T, db *store.DB) store.AuditReport {
	t.Helper()
	r, err := db.VerifyAudit(t.Context())
	if err != nil {
		t.Fatalf("VerifyAudit() error = %v", err)
	}
	return r
}

func testAuditChainVerifies(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	if r := verify(t, db); !r.OK() || r.Rows != 0 {
		t.Errorf("VerifyAudit() on an empty trail = %v, want OK with 0 rows", r)
	}
	events := appendEvents(t, db, time.Now(), 5)
	for i, ev := range events {
		if ev.Seq != int64(i+1) || len(ev.Hash) != 32 {
			t.Errorf("event %d: seq %d, hash %x; want seq %d and a SHA-256", i, ev.Seq, ev.Hash, i+1)
		}
	}
	r := verify(t, db)
	if !r.OK() || r.Rows != 5 || string(r.Head) != string(events[4].Hash) {
		t.Errorf("VerifyAudit() = %v, want OK with 5 rows and head %x", r, events[4].Hash)
	}
}

func testAuditEditedRowCaught(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	events := appendEvents(t, db, time.Now(), 5)
	victim := events[2]
	// An intruder hides a failed login: the reason, then the outcome.
	for _, q := range []string{
		`UPDATE audit_events SET detail = 'nothing to see' WHERE id = ?`,
		`UPDATE audit_events SET code = 'ok' WHERE id = ?`,
	} {
		if _, err := store.RawSQL(db).ExecContext(t.Context(), q, victim.ID); err != nil {
			t.Fatal(err)
		}
		r := verify(t, db)
		if r.OK() || r.Bad.ID != victim.ID {
			t.Fatalf("VerifyAudit() after %q = %v, want the row %s named", q, r, victim.ID)
		}
		if !strings.Contains(r.String(), victim.ID) {
			t.Errorf("report %q does not name the row %s", r.String(), victim.ID)
		}
	}
}

func testAuditDeletedRowCaught(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	events := appendEvents(t, db, time.Now(), 5)
	if _, err := store.RawSQL(db).ExecContext(t.Context(), `DELETE FROM audit_events WHERE id = ?`, events[2].ID); err != nil {
		t.Fatal(err)
	}
	r := verify(t, db)
	if r.OK() || r.Bad.ID != events[3].ID {
		t.Fatalf("VerifyAudit() after deleting seq 3 = %v, want the row after it (%s) named", r, events[3].ID)
	}
	// Renumbering the rest to close the gap does not help: the hash of the
	// row after the gap covers the hash of the row deleted.
	if _, err := store.RawSQL(db).ExecContext(t.Context(), `UPDATE audit_events SET seq = seq - 1 WHERE seq = 4`); err != nil {
		t.Fatal(err)
	}
	r = verify(t, db)
	if r.OK() || r.Bad.ID != events[3].ID {
		t.Errorf("VerifyAudit() after closing the gap = %v, want %s named", r, events[3].ID)
	}
}

func testAuditConcurrentAppends(t *testing.T, e engine) {
	t.Parallel()
	dsn := e.dsn(t)
	db := e.reopen(t, dsn)
	// A second handle on the same database stands for another replica.
	other := e.reopen(t, dsn)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		h := db
		if w%2 == 1 {
			h = other
		}
		wg.Go(func() {
			for i := range each {
				if err := h.RecordAuditEvent(t.Context(), store.AuditEvent{Procedure: "/p", Code: "ok", RequestID: fmt.Sprintf("w%d-%d", w, i)}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("RecordAuditEvent() error = %v", err)
	}
	if r := verify(t, db); !r.OK() || r.Rows != writers*each {
		t.Errorf("VerifyAudit() after concurrent appends = %v, want OK with %d rows", r, writers*each)
	}
}

func testAuditPrune(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	events := appendEvents(t, db, base, 6)
	// Rows 1 to 3 are older than base+3.5s.
	n, err := db.PruneAudit(t.Context(), base.Add(3500*time.Millisecond))
	if err != nil || n != 3 {
		t.Fatalf("PruneAudit() = %d, %v; want 3 rows", n, err)
	}
	r := verify(t, db)
	if !r.OK() || r.Rows != 3 || r.AnchorSeq != 3 {
		t.Fatalf("VerifyAudit() after pruning = %v, want OK with 3 rows from anchor seq 3", r)
	}
	if n, err := db.PruneAudit(t.Context(), base); err != nil || n != 0 {
		t.Errorf("PruneAudit(nothing older) = %d, %v; want 0", n, err)
	}
	// Appends continue the chain after the anchor.
	if err := db.RecordAuditEvent(t.Context(), store.AuditEvent{Procedure: "/p", Code: "ok"}); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, db); !r.OK() || r.Rows != 4 {
		t.Errorf("VerifyAudit() after an append = %v, want OK with 4 rows", r)
	}
	// The oldest kept row is still protected...
	if _, err := store.RawSQL(db).ExecContext(t.Context(), `UPDATE audit_events SET actor_id = 'someone' WHERE id = ?`, events[3].ID); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, db); r.OK() || r.Bad.ID != events[3].ID {
		t.Errorf("VerifyAudit() after editing the oldest kept row = %v, want %s named", r, events[3].ID)
	}
	if _, err := store.RawSQL(db).ExecContext(t.Context(), `UPDATE audit_events SET actor_id = ? WHERE id = ?`, events[3].ActorID, events[3].ID); err != nil {
		t.Fatal(err)
	}
	// ... and so is its deletion, which no longer matches the anchor.
	if _, err := store.RawSQL(db).ExecContext(t.Context(), `DELETE FROM audit_events WHERE id = ?`, events[3].ID); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, db); r.OK() || r.Bad.ID != events[4].ID {
		t.Errorf("VerifyAudit() after deleting the oldest kept row = %v, want %s named", r, events[4].ID)
	}
	// Pruning everything leaves an anchor that new rows follow.
	db2 := e.open(t)
	appendEvents(t, db2, base, 2)
	if n, err := db2.PruneAudit(t.Context(), base.Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("PruneAudit(all) = %d, %v; want 2", n, err)
	}
	if err := db2.RecordAuditEvent(t.Context(), store.AuditEvent{Procedure: "/p", Code: "ok"}); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, db2); !r.OK() || r.Rows != 1 || r.AnchorSeq != 2 {
		t.Errorf("VerifyAudit() after pruning all and an append = %v, want OK with 1 row from anchor seq 2", r)
	}
}

func testAuditFilters(t *testing.T, e engine) {
	t.Parallel()
	db := e.open(t)
	ctx := t.Context()
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := []store.AuditEvent{
		{Time: base, Type: "login_success", ActorID: "alice", Procedure: "/a/Login", Code: "ok", RequestID: "1"},
		{Time: base.Add(time.Minute), Type: "role_change", ActorID: "admin", SubjectID: "alice", Procedure: "/a/SetUserRoles", Code: "ok", RequestID: "2"},
		{Time: base.Add(2 * time.Minute), Type: "authorization_denied", ActorID: "bob", Procedure: "/n/CreateNote", Code: "permission_denied", RequestID: "3"},
		{Time: base.Add(3 * time.Minute), Type: "rpc", ActorID: "admin", Procedure: "/a/SetUserRoles", Code: "ok", RequestID: "4"},
	}
	for _, r := range rows {
		if err := db.RecordAuditEvent(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		f    store.AuditFilter
		want string
	}{
		{"all", store.AuditFilter{}, "4321"},
		{"user_actor_or_subject", store.AuditFilter{UserID: "alice"}, "21"},
		{"types", store.AuditFilter{Types: []string{"role_change", "authorization_denied"}}, "32"},
		{"procedure", store.AuditFilter{Procedure: "/a/SetUserRoles"}, "42"},
		{"code", store.AuditFilter{Code: "permission_denied"}, "3"},
		{"time_range", store.AuditFilter{Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}, "32"},
		{"before_seq", store.AuditFilter{BeforeSeq: 3}, "21"},
		{"injection_matches_nothing", store.AuditFilter{UserID: "' OR '1'='1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.ListAuditEvents(ctx, tt.f, 0)
			if err != nil {
				t.Fatal(err)
			}
			var ids strings.Builder
			for _, e := range got {
				ids.WriteString(e.RequestID)
			}
			if ids.String() != tt.want {
				t.Errorf("ListAuditEvents(%+v) = %q, want %q", tt.f, ids.String(), tt.want)
			}
		})
	}
}
